"""Files to articles: Markdown with front matter, plain text and JSONL read into Article records; fields
(URLs, dates, tags, authors, drafts), text clean-up (mojibake, markup), merging and deduplication by canonical
URL, and the cache of prepared articles keyed by the raw input's hash."""
