// twostep hosted pages: small enhancements. Every page works without this
// script; it adds copy buttons and counts down the "send again" wait.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // Copy buttons: data-copy holds the text; data-copy-codes names a list.
  function copied(button, text) {
    var status = document.querySelector("[data-copy-status]");
    navigator.clipboard.writeText(text).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      if (status) status.textContent = "Copied to the clipboard.";
      setTimeout(function () { button.textContent = label; }, 2000);
    }, function () {
      if (status) status.textContent = "Could not copy: select the text and copy it yourself.";
    });
  }
  if (navigator.clipboard) {
    document.querySelectorAll("[data-copy]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () { copied(b, b.getAttribute("data-copy")); });
    });
    document.querySelectorAll("[data-copy-codes]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () {
        var list = document.querySelector(b.getAttribute("data-copy-codes"));
        var codes = Array.prototype.map.call(list.querySelectorAll("code"), function (c) { return c.textContent; });
        copied(b, codes.join("\n") + "\n");
      });
    });
  }

  // "Send again" waits for the cooldown: the buttons stay disabled and the
  // hint counts down. The server enforces the wait either way.
  var buttons = document.querySelectorAll("[data-resend-in]");
  var hint = document.querySelector("[data-countdown]");
  var left = 0;
  buttons.forEach(function (b) { left = Math.max(left, parseInt(b.getAttribute("data-resend-in"), 10) || 0); });
  if (left > 0) {
    var tick = function () {
      buttons.forEach(function (b) { b.disabled = left > 0; });
      if (hint) hint.textContent = left > 0 ? "You can ask for a new code in " + left + " s." : "";
      if (left > 0) { left--; setTimeout(tick, 1000); }
    };
    tick();
  }
});
