// The payment page editor shows only the amount fields of the chosen amount rule
// (fixed: the amount; choices: the preset amounts; free: the minimum and maximum).
(function () {
  function update(select) {
    document.querySelectorAll("[data-cmi-amount-for]").forEach(function (panel) {
      panel.style.display = panel.getAttribute("data-cmi-amount-for") === select.value ? "" : "none";
    });
  }
  function start() {
    var select = document.getElementById("id_amount_rule");
    if (!select) return;
    update(select);
    select.addEventListener("change", function () { update(select); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
