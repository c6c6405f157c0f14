// Progressive enhancement: every page works without this script. With it, an open queue asks
// the server every few seconds for flags newer than the newest shown and adds them at the top
// (announced to screen readers through the polite live region).
(function () {
  "use strict";
  var table = document.getElementById("queue");
  if (!table || table.getAttribute("data-poll") !== "1") { return; }
  var body = document.getElementById("queue-rows");
  var live = document.getElementById("live");
  var query = table.getAttribute("data-query") || "";
  var every = 2000;
  function poll() {
    var latest = table.getAttribute("data-latest") || "0";
    var url = "/queue/updates?" + (query ? query + "&" : "") + "after=" + encodeURIComponent(latest);
    fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
      .then(function (resp) {
        if (resp.status === 401) { window.location.assign("/signin?expired=idle"); return null; }
        return resp.ok ? resp.json() : null;
      })
      .then(function (data) {
        if (data && data.count > 0) {
          body.insertAdjacentHTML("afterbegin", data.html);
          table.setAttribute("data-latest", String(data.latest));
          live.textContent = data.count === 1 ? "1 new flag" : data.count + " new flags";
        }
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { window.setTimeout(poll, every); });
  }
  window.setTimeout(poll, every);
})();
