'use strict';
document.addEventListener('submit', function (event) {
  var question = event.target.getAttribute('data-confirm');
  if (question !== null && !window.confirm(question)) { event.preventDefault(); }
});
document.addEventListener('click', function (event) {
  var button = event.target.closest('[data-copy]');
  if (button === null) { return; }
  var field = document.getElementById(button.getAttribute('data-copy'));
  navigator.clipboard.writeText(field.value).then(function () { button.textContent = 'Copied'; });
});
