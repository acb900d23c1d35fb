// The sign-in / sign-up panel every page shows until the tab has a session, and the account bar in
// the header (who is signed in, sign out). Main thread; the server checks names, passwords and ages:
// the panel only shows its answers.

import { signIn, signUp } from './account.js';
import { h, showError } from './ui.js';

/**
 * Builds the panel into `panel` and the account bar into `bar`, then calls `onSignedIn(session)` at
 * once when the tab already has a valid session, or after the person signs in or up. `role` is the
 * role a new account gets ('listener' or 'singer'); `allowSignUp` false offers sign-in only (agents
 * and admins are made by the operator). Returns {signOut(message)}: clears the session, calls
 * `onSignedOut()` and shows the panel with `message` (used when the server refuses the token).
 */
export function setUpAccount({ session, panel, bar, role = 'listener', allowSignUp = true, title = 'Sign in',
    onSignedIn = () => {}, onSignedOut = () => {} }) {
    let mode = 'signin';
    const year = new Date().getFullYear();
    const nameIn = h('input', { id: 'auth-name', name: 'username', required: true, maxLength: 64,
        autocomplete: 'username', spellcheck: false, autocapitalize: 'none' });
    const passIn = h('input', { id: 'auth-password', name: 'password', type: 'password', required: true,
        maxLength: 256, autocomplete: 'current-password' });
    const yearIn = h('input', { id: 'auth-birth-year', name: 'birth-year', type: 'number', min: 1900,
        max: year, step: 1, inputMode: 'numeric', autocomplete: 'bday-year' });
    const yearRow = h('div', { id: 'auth-signup-fields', className: 'hidden' },
        h('label', { for: 'auth-birth-year' }, 'Birth year'), yearIn,
        h('p', { className: 'hint' }, 'Only people 18 or older can buy coins and send gifts.'));
    const error = h('p', { id: 'auth-error', className: 'error', role: 'alert' });
    const heading = h('h2', { id: 'auth-title' }, title);
    const submit = h('button', { id: 'auth-submit', type: 'submit', className: 'primary' }, 'Sign in');
    const toggle = h('button', { id: 'auth-mode', type: 'button', className: 'linkish' }, 'Create an account');
    const form = h('form', { id: 'auth-form', 'aria-labelledby': 'auth-title' }, heading,
        h('label', { for: 'auth-name' }, 'Account name'), nameIn,
        h('label', { for: 'auth-password' }, 'Password'), passIn,
        yearRow, error, submit, allowSignUp ? toggle : null);
    panel.replaceChildren(form);

    const who = h('span', { id: 'whoami', className: 'whoami' });
    const out = h('button', { id: 'sign-out', type: 'button', className: 'small' }, 'Sign out');
    bar.replaceChildren(who, out);

    function setMode(m) {
        mode = m;
        const up = m === 'signup';
        heading.textContent = up ? `Create ${role === 'singer' ? 'a singer' : 'an'} account` : title;
        submit.textContent = up ? 'Create account' : 'Sign in';
        toggle.textContent = up ? 'I already have an account' : 'Create an account';
        yearRow.classList.toggle('hidden', !up);
        yearIn.required = up;
        passIn.autocomplete = up ? 'new-password' : 'current-password';
        showError(error, null);
    }

    function showSignedIn() {
        panel.classList.add('hidden');
        bar.classList.remove('hidden');
        who.textContent = `${session.user.name} (${session.user.role})`;
        onSignedIn(session);
    }

    function signOut(message) {
        session.clear();
        bar.classList.add('hidden');
        panel.classList.remove('hidden');
        onSignedOut();
        showError(error, message ? Object.assign(new Error(message), { code: 'unauthorized' }) : null);
    }

    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        showError(error, null);
        submit.disabled = true;
        try {
            const name = nameIn.value.trim();
            const data = mode === 'signup'
                ? await signUp({ name, password: passIn.value, birthYear: Number(yearIn.value), role })
                : await signIn({ name, password: passIn.value });
            passIn.value = '';
            session.signedIn(data);
            showSignedIn();
        } catch (e) {
            showError(error, e);
        } finally {
            submit.disabled = false;
        }
    });
    toggle.addEventListener('click', () => setMode(mode === 'signup' ? 'signin' : 'signup'));
    out.addEventListener('click', () => signOut(null));

    setMode(new URLSearchParams(window.location.search).get('signup') === '1' && allowSignUp ? 'signup' : 'signin');
    if (session.valid) {
        showSignedIn();
    } else {
        bar.classList.add('hidden');
        panel.classList.remove('hidden');
    }
    return { signOut };
}
