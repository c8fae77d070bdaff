/* recommender widget: the related links of the page that includes it, from `recommender serve`.

   <div id="related"></div>
   <script src="https://links.example.com/widget.js" data-target="#related" data-k="5" defer></script>

   data-target  CSS selector of the element the list goes into (default: right after this script tag)
   data-k       how many links (default: the server's policy)
   data-url     the page's address to look up (default: this page's address without its #fragment)
   data-id      look up by article id instead of by address
   data-heading the list's heading and its accessible name (default "Related articles")
   data-api     where the API is (default: the folder this script was loaded from)

   It renders <nav class="recommender-related" aria-label="..."><h2>...</h2><ul><li><a href>title</a></li></ul></nav>
   with textContent only; only http(s) addresses become links (links without one are left out). An unknown page,
   an error or an origin the server does not allow (`[serve] cors_origins`) renders nothing and throws nothing.
   When done, the script tag gets data-state="shown" (with data-count) or "none". */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var opts = script.dataset;

  function httpUrl(value) {
    if (typeof value !== "string") return null;
    try {
      var url = new URL(value, document.baseURI);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function request() {
    var api = new URL(opts.api || ".", script.src);
    if (!/\/$/.test(api.pathname)) api.pathname += "/";
    var url;
    if (opts.id) {
      url = new URL("related/" + opts.id.split("/").map(encodeURIComponent).join("/"), api);
    } else {
      url = new URL("related", api);
      url.searchParams.set("url", opts.url || location.href.split("#")[0]);
    }
    if (opts.k) url.searchParams.set("k", opts.k);
    return url.href;
  }

  function done(count) {
    script.setAttribute("data-state", count ? "shown" : "none");
    if (count) script.setAttribute("data-count", String(count));
  }

  function render(related) {
    var links = [];
    for (var i = 0; i < related.length; i++) {
      var item = related[i] || {};
      var href = httpUrl(item.url);
      if (href && typeof item.title === "string" && item.title) links.push({ href: href, title: item.title });
    }
    var target = opts.target ? document.querySelector(opts.target) : null;
    if (!links.length || (opts.target && !target)) return done(0);
    var heading = opts.heading || "Related articles";
    var nav = document.createElement("nav");
    nav.className = "recommender-related";
    nav.setAttribute("aria-label", heading);
    var h2 = document.createElement("h2");
    h2.textContent = heading;
    var ul = document.createElement("ul");
    links.forEach(function (link) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.title;
      li.appendChild(a);
      ul.appendChild(li);
    });
    nav.appendChild(h2);
    nav.appendChild(ul);
    if (target) target.appendChild(nav);
    else if (script.parentNode && script.parentNode !== document.head) script.parentNode.insertBefore(nav, script.nextSibling);
    else document.body.appendChild(nav);
    done(links.length);
  }

  function run() {
    var url;
    try {
      url = request();
    } catch (e) {
      return done(0);
    }
    fetch(url, { credentials: "omit", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && Array.isArray(body.related)) render(body.related);
        else done(0);
      })
      .catch(function () { done(0); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
