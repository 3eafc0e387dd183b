// Clerk pages: follow the order without reloading by hand, count down the QR window,
// and never send a form twice.
(function () {
  "use strict";

  // The first answers come fast (a pre-check takes a tenth of a second): look soon, then less often.
  var POLL_DELAYS = [300, 500, 800, 1200, 1500, 2000];

  function poll(el) {
    var url = el.getAttribute("data-poll");
    var seen = el.getAttribute("data-status");
    var round = 0;
    var refused = 0;
    // Once the page is being left (a form sent, a link followed), an answer that comes meanwhile must not
    // reload it: that would cancel the navigation the clerk asked for (tests/tv/test_browser.py shows the case).
    var leaving = false;
    window.addEventListener("beforeunload", function () { leaving = true; });
    function later(ms) { window.setTimeout(tick, ms); }
    function next() { return POLL_DELAYS[Math.min(round++, POLL_DELAYS.length - 1)]; }
    function tick() {
      if (leaving) { return; }
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          // The clerk's session ended (a shift's end, signed out elsewhere): the page, loaded again, says so
          // and leads back in; polling on would leave it showing a state it no longer follows. Twice in a row:
          // a sign-in in another window answers one poll sent with the cookie it has just replaced.
          if (r.status === 401 || r.status === 403) { refused += 1; return refused > 1 ? "signed_out" : null; }
          refused = 0;
          return r.ok ? r.json() : null;
        })
        .then(function (data) {
          if (leaving) { return; }
          if (data === "signed_out") { window.location.reload(); return; }
          if (data && data.status !== seen) { window.location.reload(); return; }
          if (data) { retrying(data.retries || 0); }
          later(next());
        })
        .catch(function () { later(3000); });
    }
    later(next());
  }

  // An outside system that does not answer is tried again by the system: say so, with the attempt.
  function retrying(count) {
    var hint = document.querySelector("[data-retrying]");
    if (!hint) { return; }
    if (!count) { hint.hidden = true; return; }
    var text = hint.getAttribute(hint.getAttribute("data-kind") === "precheck" ? "data-text-precheck" : "data-text-other");
    hint.textContent = text.replace("{n}", String(count));
    hint.hidden = false;
  }

  // A per-view product is one programme: its number is asked for only when one is chosen.
  function contentChoice(box) {
    var form = box.closest("form");
    var input = box.querySelector("input[name=content_id]");
    function update() {
      var chosen = form.querySelector("input[name=product]:checked");
      var perView = !!(chosen && chosen.hasAttribute("data-per-view"));
      box.hidden = !perView;
      input.required = perView;
    }
    form.querySelectorAll("input[name=product]").forEach(function (radio) {
      radio.addEventListener("change", update);
    });
    update();
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

  // The payment-code field (付款码): a barcode scanner types the digits and Enter. What is not a WeChat Pay or
  // Alipay code is refused at once, here (the server checks again, and refuses a code used before); the
  // field keeps the focus, and digits typed anywhere else on the page go to it, so no click is needed.
  function scan(form) {
    var input = form.querySelector("input[name=code]");
    var hint = form.querySelector("[data-hint]");
    var error = form.querySelector("[data-error]");
    var wechatpay = new RegExp("^(?:" + form.getAttribute("data-wechatpay") + ")$");
    var alipay = new RegExp("^(?:" + form.getAttribute("data-alipay") + ")$");
    var sent = false;
    function clean(value) { return value.replace(/[\s-]+/g, ""); }
    function problem(code) {
      if (!code) { return form.getAttribute("data-msg-empty"); }
      if (!/^[0-9]+$/.test(code)) { return form.getAttribute("data-msg-digits"); }
      if (!wechatpay.test(code) && !alipay.test(code)) { return form.getAttribute("data-msg-unknown"); }
      return "";
    }
    function show(message) {
      error.textContent = message;
      error.hidden = !message;
      input.setAttribute("aria-invalid", message ? "true" : "false");
    }
    input.addEventListener("input", function () {
      var code = clean(input.value);
      hint.textContent = wechatpay.test(code) ? form.getAttribute("data-name-wechatpay")
        : alipay.test(code) ? form.getAttribute("data-name-alipay") : "";
      if (!error.hidden) { show(""); }
      // The server's refusal of the code before (used already, declined) is not about this one.
      document.querySelectorAll(".flash.error").forEach(function (flash) { flash.hidden = true; });
    });
    form.addEventListener("submit", function (event) {
      var code = clean(input.value);
      var message = sent ? "" : problem(code);
      if (sent || message) {
        event.preventDefault();
        if (message) { show(message); input.select(); }
        return;
      }
      sent = true;  // a scanner's second Enter must not send the code twice
      input.value = code;
      input.readOnly = true;
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    });
    document.addEventListener("keydown", function (event) {
      // Typing is a field that takes text: a ticked checkbox or a button with the focus must not swallow
      // a scanner's digits (its Enter would then submit that form: cash, or the phone bill).
      var where = document.activeElement;
      var typing = where && (/^(TEXTAREA|SELECT)$/.test(where.tagName) ||
        (where.tagName === "INPUT" && /^(text|search|tel|number|password|email|url)$/.test(where.type)));
      if (!typing && /^[0-9]$/.test(event.key) && !event.ctrlKey && !event.metaKey && !event.altKey) {
        input.focus();
      }
    });
    input.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-scan]").forEach(scan);
    document.querySelectorAll("[data-renew]").forEach(renewChoice);
    document.querySelectorAll("[data-content]").forEach(contentChoice);
    var hint = document.querySelector("[data-retrying]");
    if (hint) { retrying(parseInt(hint.getAttribute("data-retries"), 10) || 0); }
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll("[data-expires-at]").forEach(countdown);
    document.querySelectorAll("form[data-once]").forEach(once);
    document.querySelectorAll("[data-print]").forEach(function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
  });
})();
