{# Links to Airflow pages: inside the UI's iframe (sandbox "allow-scripts allow-same-origin") a page
   may not navigate the top window, but it may push the URL into the top window's history and tell
   the UI's router; anything that fails falls back to an ordinary link. Then a reload every
   refresh_seconds. Nothing from the board is put into this script. #}
document.addEventListener("click", function (e) {
  var a = e.target.closest && e.target.closest("a[data-airflow]");
  if (!a || window.top === window || e.ctrlKey || e.metaKey || e.shiftKey) return;
  try {
    var h = window.top.history, s = h.state || {};
    h.pushState({usr: null, key: Math.random().toString(36).slice(2, 10), idx: (s.idx || 0) + 1}, "",
                a.getAttribute("href"));
    window.top.dispatchEvent(new PopStateEvent("popstate", {state: h.state}));
    e.preventDefault();
  } catch (err) { /* ordinary navigation inside the frame */ }
});
setTimeout(function () { location.reload(); }, {{ refresh_seconds * 1000 }});
