// Clerk pages: follow the order without reloading by hand, count down the QR window,
// and never send a form twice.
(function () {
  "use strict";

  function poll(el) {
    var url = el.getAttribute("data-poll");
    var seen = el.getAttribute("data-status");
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data && data.status !== seen) { window.location.reload(); return; }
          window.setTimeout(tick, 1500);
        })
        .catch(function () { window.setTimeout(tick, 3000); });
    }
    window.setTimeout(tick, 1500);
  }

  function countdown(el) {
    var end = Date.parse(el.getAttribute("data-expires-at"));
    var out = el.querySelector("[data-left]");
    var hint = document.querySelector("[data-expired-text]");
    function pad(n) { return (n < 10 ? "0" : "") + n; }
    function tick() {
      var left = Math.max(0, Math.round((end - Date.now()) / 1000));
      out.textContent = pad(Math.floor(left / 60)) + ":" + pad(left % 60);
      if (left === 0) {
        if (hint) { hint.textContent = hint.getAttribute("data-expired-text"); }
        var box = el.closest(".qr-box");
        if (box) { box.classList.add("expired"); }
        return;
      }
      window.setTimeout(tick, 500);
    }
    tick();
  }

  function once(form) {
    form.addEventListener("submit", function () {
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    });
  }

  // Automatic renewal is offered for the products that renew, with the chosen product's terms. The tick is
  // consent to the terms shown: another product (other terms) or one that does not renew clears it.
  function renewChoice(box) {
    var form = box.closest("form");
    var tick = box.querySelector("input[name=auto_renew]");
    function update() {
      var chosen = form.querySelector("input[name=product]:checked");
      var renews = !!(chosen && chosen.hasAttribute("data-renewable"));
      box.hidden = !renews;
      box.querySelectorAll("[data-terms-for]").forEach(function (terms) {
        terms.hidden = !renews || terms.getAttribute("data-terms-for") !== chosen.value;
      });
    }
    form.querySelectorAll("input[name=product]").forEach(function (radio) {
      radio.addEventListener("change", function () { tick.checked = false; update(); });
    });
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-renew]").forEach(renewChoice);
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll("[data-expires-at]").forEach(countdown);
    document.querySelectorAll("form[data-once]").forEach(once);
    document.querySelectorAll("[data-print]").forEach(function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
  });
})();
