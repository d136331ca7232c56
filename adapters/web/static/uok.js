// uok web view: time travel without a reload, and live pages fed by the log
// (server-sent events). No framework, nothing fetched from elsewhere.
(function () {
  "use strict";
  var body = document.body;
  var source = null;
  var busy = false;
  var again = false;

  function swap(url, push) {
    return fetch(url, { headers: { "X-Uok-Partial": "1" }, cache: "no-store" }).then(function (r) {
      return r.text().then(function (html) {
        document.getElementById("main").innerHTML = html;
        body.dataset.live = r.headers.get("X-Uok-Live") || "0";
        body.dataset.position = r.headers.get("X-Uok-Position") || body.dataset.position;
        body.dataset.head = r.headers.get("X-Uok-Head") || body.dataset.head;
        var badge = document.getElementById("livebadge");
        if (badge) badge.textContent = body.dataset.live === "1" ? "live" : "as of " + body.dataset.position;
        if (push) history.pushState({}, "", url);
        bind();
        follow();
        document.dispatchEvent(new CustomEvent("uok:updated", { detail: { position: body.dataset.position } }));
      });
    });
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    swap(location.pathname + location.search, false).catch(function () {}).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }

  function follow() {
    var live = body.dataset.live === "1";
    if (live && !source && window.EventSource) {
      source = new EventSource("/api/stream?after=" + encodeURIComponent(body.dataset.position));
      source.addEventListener("position", function (e) {
        if (Number(e.data) > Number(body.dataset.position)) refresh();
      });
    } else if (!live && source) {
      source.close();
      source = null;
    }
  }

  function travel(form, at) {
    var url = new URL(form.dataset.path, location.origin);
    Array.prototype.forEach.call(form.querySelectorAll("input[type=hidden]"), function (i) {
      if (i.value) url.searchParams.set(i.name, i.value);
    });
    url.searchParams.set("at", at);
    swap(url.pathname + url.search, true);
  }

  function bind() {
    var form = document.getElementById("timetravel");
    var range = document.getElementById("tt-range");
    var num = document.getElementById("tt-at");
    if (form && range && num) {
      range.addEventListener("input", function () { num.value = range.value; });
      range.addEventListener("change", function () { travel(form, range.value); });
      form.addEventListener("submit", function (e) { e.preventDefault(); travel(form, num.value); });
    }
    var q = document.getElementById("sql-q");
    if (q) q.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) q.form.submit();
    });
  }

  window.addEventListener("popstate", function () { swap(location.pathname + location.search, false); });
  bind();
  follow();
})();
