// The editors' page. Every piece of data reaches the page as text (textContent, setAttribute), never as HTML,
// and only http(s) URLs become links; the server's Content-Security-Policy runs no inline script at all.
"use strict";
const $ = (id) => document.getElementById(id);
let current = null;
let pins = [];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value != null && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child != null && child !== false) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
function lines(items) {  // text lines separated by <br>
  return items.flatMap((text, i) => (i ? [el("br"), text] : [text]));
}
function safeUrl(url) {  // http(s) only: never javascript:, data: or file:
  if (typeof url !== "string" || !url) return null;
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch (err) { return null; }
}
function showError(err) { $("status").textContent = err.message; }

async function api(path, options = {}) {
  // no-cache: the browser asks again (a 304 when nothing changed), so the page shows the links as they are now
  const response = await fetch(path, {cache: "no-cache", ...options});
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}
function why(link) {
  const parts = Object.entries(link.parts || {}).map(([k, v]) =>
    `${k} z ${Number(v.z ?? 0).toFixed(2)} (value ${Number(v.value ?? 0).toFixed(3)})`).join(", ");
  const e = link.explanation || {};
  const terms = (e.shared_terms || []).join(", ");
  return [parts, terms && "shared terms: " + terms, (e.mentions || []).length && "names: " + [].concat(e.mentions).join(", "),
          e.passage && "passage: " + String(e.passage).slice(0, 160), e.topics && "tags: " + [].concat(e.topics).join(", "),
          e.pinned].filter(Boolean);
}
function score(link) {  // a pin outside the ranked candidates has no score (null)
  const value = typeof link.score === "number" ? link.score.toFixed(3) : "–";
  return link.pinned ? value + " (pinned)" : value;
}
async function listArticles() {
  const q = $("q").value;
  const data = await api("/articles?q=" + encodeURIComponent(q) + "&k=15");
  $("results-heading").textContent = q ? "Matching articles" : "Most recent articles";
  $("results").replaceChildren(...data.articles.map((a) =>
    el("li", {"data-id": a.id}, a.title || a.id, " ", el("span", {class: "muted"}, a.id, a.published ? " · " + a.published.slice(0, 10) : ""))));
  if (!data.articles.length) $("results").append(el("li", {class: "muted"}, "no article matches"));
}
function linkRow(l, i) {
  const href = safeUrl(l.url);
  const title = href ? el("a", {href, rel: "noopener noreferrer", target: "_blank"}, l.title) : l.title;
  const actions = l.pinned ? [el("button", {"data-act": "up"}, "up"), el("button", {"data-act": "unpin"}, "unpin")]
                           : [el("button", {"data-act": "pin"}, "pin")];
  return el("tr", {class: l.pinned ? "pinned" : null, "data-id": l.id},
    el("td", {}, i + 1),
    el("td", {title: typeof l.score === "number" ? null : "pinned, outside the ranked candidates"}, score(l)),
    el("td", {}, title, el("br"), el("span", {class: "muted"}, l.url || l.id)),
    el("td", {class: "why"}, lines(why(l))),
    el("td", {}, actions, el("button", {"data-act": "block"}, "block")));
}
function checkText(check) {
  if (!check.items.length) return ["no curated list for this article"];
  return check.items.flatMap((c) => [
    `agreement ${c.agreement}`,
    `curated links not in the top ${check.k}: ` +
      (c.low.map((g) => `${g.id} (${g.rank ? "rank " + g.rank : g.reason})`).join(", ") || "none"),
    "suggestions missing from the curated list: " +
      (c.missing.map((m) => `${m.id} (rank ${m.rank})`).join(", ") || "none")]);
}
async function show(id) {
  current = id;
  location.hash = encodeURIComponent(id);
  const data = await api("/related/" + encodeURIComponent(id) + "?explain=1");
  $("version").textContent = "index version " + data.version;
  $("title").textContent = `${data.query.title} (${data.query.id})`;
  pins = data.related.filter((l) => l.pinned).map((l) => l.id);
  $("links").replaceChildren(...data.related.map(linkRow));
  const ov = await api("/overrides?article=" + encodeURIComponent(id));
  const blocks = ov.overrides.filter((o) => o.action === "block");
  $("blocked").replaceChildren(...(blocks.length ? blocks.map((o) => el("li", {"data-id": o.target, "data-article": o.article},
    o.target, o.article === "*" ? " (every article)" : "", " ", el("button", {"data-act": "unblock"}, "unblock")))
    : [el("li", {class: "muted"}, "none")]));
  const never = ov.overrides.filter((o) => o.action === "pin" && o.never_shown);
  $("never-shown").replaceChildren(...never.map((o) => el("li", {"data-id": o.target, "data-article": o.article},
    o.target, o.article === "*" ? " (every article)" : "", ": ", o.never_shown, " ", el("button", {"data-act": "unpin"}, "unpin"))));
  $("never").hidden = !never.length;
  const check = await api("/check?id=" + encodeURIComponent(id));
  $("check").replaceChildren(...lines(checkText(check)));
  $("article").hidden = false;
}
async function write(body) {
  await api("/overrides", {method: "POST", headers: {"Content-Type": "application/json",
    "Authorization": "Bearer " + $("token").value}, body: JSON.stringify(body)});
}
async function act(action, target, article) {
  try {
    $("status").textContent = "";
    if (action === "up") {
      const order = pins.slice();
      const i = order.indexOf(target);
      if (i > 0) { [order[i - 1], order[i]] = [order[i], order[i - 1]]; }
      await write({action: "order", article: current, targets: order});
    } else {
      await write({action, article: article || current, target});
    }
    await show(current);
  } catch (err) { showError(err); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = localStorage.getItem("recommender-token") || "";
  $("token").addEventListener("change", () => localStorage.setItem("recommender-token", $("token").value));
  $("q").addEventListener("input", () => listArticles().catch(showError));
  $("results").addEventListener("click", (e) => {
    const li = e.target.closest("li[data-id]");
    if (li) show(li.dataset.id).catch(showError);
  });
  document.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-act]");
    if (!b) return;
    const row = b.closest("[data-id]");
    act(b.dataset.act, row.dataset.id, row.dataset.article);
  });
  window.addEventListener("hashchange", () => {
    const id = decodeURIComponent(location.hash.slice(1));
    if (id && id !== current) show(id).catch(showError);
  });
  listArticles().catch(showError);
  if (location.hash.length > 1) show(decodeURIComponent(location.hash.slice(1))).catch(showError);
});
