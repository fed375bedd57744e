// trainkit dashboard keys: on the review page a = accept, r = reject (asks a reason), e = edit, j/k = next/previous,
// x = select for a bulk action. Everything also works with the buttons, without JavaScript.
(function () {
  function items() { return Array.from(document.querySelectorAll(".review-item")); }
  function current() { return document.querySelector(".review-item.current") || items()[0]; }
  function select(el) {
    items().forEach(function (i) { i.classList.remove("current"); });
    if (el) { el.classList.add("current"); el.scrollIntoView({block: "nearest"}); }
  }
  // After an action the page reloads without the item acted on: the cursor goes to the item that followed it
  // (remembered at submit), not back to the first.
  var NEXT = "trainkit-review-next";
  document.addEventListener("DOMContentLoaded", function () {
    var id = window.sessionStorage.getItem(NEXT);
    window.sessionStorage.removeItem(NEXT);
    select((id && document.getElementById(id)) || items()[0]);
  });
  document.addEventListener("submit", function (event) {
    var item = event.target.closest && event.target.closest(".review-item");
    if (!item) return;
    var list = items(), next = list[list.indexOf(item) + 1] || list[list.indexOf(item) - 1];
    if (next) window.sessionStorage.setItem(NEXT, next.id); else window.sessionStorage.removeItem(NEXT);
  }, true);
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey || event.altKey) return;
    var item = current();
    if (!item) return;
    var list = items(), at = list.indexOf(item);
    if (event.key === "j") { select(list[Math.min(at + 1, list.length - 1)]); }
    else if (event.key === "k") { select(list[Math.max(at - 1, 0)]); }
    else if (event.key === "a") { item.querySelector("form.accept").requestSubmit(); }
    else if (event.key === "r") { var reason = item.querySelector("form.reject input[name=reason]"); reason.focus(); }
    else if (event.key === "e") { window.location = item.querySelector("a.edit").href; }
    else if (event.key === "x") { var box = item.querySelector("input[type=checkbox]"); box.checked = !box.checked; }
    else return;
    event.preventDefault();
  });
})();
