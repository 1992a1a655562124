(function () {
  // The second-factor page's switch between an authenticator code and a recovery code, without
  // reloading the page; without JavaScript the link opens the other form (`?recovery=1`).
  var link = document.getElementById('code-switch');
  var input = document.getElementById('code');
  var label = document.getElementById('code-label');
  var mode = document.getElementById('recovery');
  if (!link || !input || !label || !mode) return;
  function show(recovery) {
    mode.value = recovery ? '1' : '';
    label.textContent = recovery ? label.dataset.recovery : label.dataset.app;
    input.setAttribute('inputmode', recovery ? 'text' : 'numeric');
    input.setAttribute('autocomplete', recovery ? 'off' : 'one-time-code');
    if (recovery) {
      input.setAttribute('autocapitalize', 'none');
      input.setAttribute('spellcheck', 'false');
    } else {
      input.removeAttribute('autocapitalize');
      input.removeAttribute('spellcheck');
    }
    link.textContent = recovery ? link.dataset.appText : link.dataset.recoveryText;
    link.setAttribute('href', recovery ? link.dataset.app : link.dataset.recovery);
    input.value = '';
    input.focus();
  }
  link.addEventListener('click', function (event) {
    event.preventDefault();
    show(mode.value !== '1');
  });
})();
