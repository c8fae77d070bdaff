# Called by extract.py: for every help page of R's base and recommended packages, its text (rendered by
# tools::Rd2txt without the See Also, Examples, References, Author, Keyword and Concept sections) in
# OUT/text/PKG/FILE.txt, and one line of OUT/pages.tsv: package, file, name, title, aliases, the See Also links.
# Fields are tab-separated; aliases and links are separated by \037; a link is "OPTION\036TARGET" (OPTION: the
# \link[...] option, empty for a plain \link{TARGET}; \linkS4class{C} gives "=\036C-class").
args <- commandArgs(trailingOnly = TRUE)
out <- args[[1]]
packages <- sort(rownames(installed.packages(priority = c("base", "recommended"))))
clean <- function(x) gsub("[\t\n\r\037\036]+", " ", x)
flat <- function(node) {
  if (is.character(node)) return(paste(node, collapse = ""))
  paste(vapply(node, flat, ""), collapse = "")
}
links <- function(node) {
  found <- character(0)
  tag <- attr(node, "Rd_tag")
  if (!is.null(tag) && tag == "\\link") {
    option <- attr(node, "Rd_option")
    option <- if (is.null(option)) "" else flat(option)
    return(paste0(clean(option), "\036", clean(trimws(flat(node)))))
  }
  if (!is.null(tag) && tag == "\\linkS4class") return(paste0("=\036", clean(trimws(flat(node))), "-class"))
  if (is.list(node)) for (child in node) found <- c(found, links(child))
  found
}
dropped <- c("\\seealso", "\\examples", "\\references", "\\author", "\\keyword", "\\concept")
tsv <- file(file.path(out, "pages.tsv"), open = "w", encoding = "UTF-8")
for (pkg in packages) {
  db <- tools::Rd_db(pkg)
  dir.create(file.path(out, "text", pkg), recursive = TRUE, showWarnings = FALSE)
  for (file in sort(names(db))) {
    rd <- db[[file]]
    tags <- vapply(rd, function(x) attr(x, "Rd_tag"), "")
    name <- clean(trimws(flat(rd[[which(tags == "\\name")[1]]])))
    title <- if (any(tags == "\\title")) clean(trimws(flat(rd[[which(tags == "\\title")[1]]]))) else name
    aliases <- vapply(rd[tags == "\\alias"], function(x) clean(trimws(flat(x))), "")
    see <- unlist(lapply(rd[tags == "\\seealso"], links))
    base <- sub("\\.Rd$", "", basename(file))
    body <- rd
    body[which(tags %in% dropped)] <- NULL
    ok <- tryCatch({
      tools::Rd2txt(body, out = file.path(out, "text", pkg, paste0(base, ".txt")), package = pkg,
                    options = list(underline_titles = FALSE, width = 2000L, code_quote = FALSE))
      TRUE
    }, error = function(e) FALSE)
    if (!ok) next
    writeLines(paste(pkg, base, name, title, paste(aliases, collapse = "\037"), paste(see, collapse = "\037"),
                     sep = "\t"), tsv, useBytes = TRUE)
  }
}
close(tsv)
