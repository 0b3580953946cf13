// The dashboard works without JavaScript; this only adds "select all" on the dead letters page.
document.addEventListener("DOMContentLoaded", function () {
  var all = document.querySelector("input[data-select-all]");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = all.checked; });
  });
});
