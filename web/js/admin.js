// The admin page: sign in (admin accounts are made by the operator), list the withdrawals waiting for
// a decision (`withdraw.list`) and approve or reject each (`withdraw.approve` / `withdraw.reject`).
// Main thread; the server checks the role and the state of every withdrawal.

import { Connection } from './encore.js';
import { Session } from './account.js';
import { setUpAccount } from './signin.js';
import { $, coins, dateTime, h, setBadge, showError } from './ui.js';

const session = new Session();
let account = null;
let pending = [];
const conn = new Connection({ session,
    onClose: () => setBadge($('status'), 'disconnected', 'bad'),
    onUnauthorized: () => account.signOut('Your session has ended: please sign in again.') });

async function refresh() {
    try {
        const sig = await conn.ready();
        setBadge($('status'), 'connected', 'ok');
        const r = await sig.request('withdraw.list');
        pending = Array.isArray(r.withdrawals) ? r.withdrawals : [];
        render();
        showError($('admin-error'), null);
    } catch (e) {
        showError($('admin-error'), e);
    }
}

function render() {
    const rows = pending.map((w) => {
        const approve = h('button', { type: 'button', className: 'small primary', dataset: { action: 'approve' },
            'aria-label': `Approve ${w.withdrawal}` }, 'Approve');
        const reason = h('input', { type: 'text', className: 'reason', placeholder: 'reason',
            'aria-label': `Reason to reject ${w.withdrawal}`, maxLength: 200 });
        const reject = h('button', { type: 'button', className: 'small', dataset: { action: 'reject' },
            'aria-label': `Reject ${w.withdrawal}` }, 'Reject');
        approve.addEventListener('click', () => decide(w, 'withdraw.approve', {}, [approve, reject]));
        reject.addEventListener('click', () => decide(w, 'withdraw.reject',
            { reason: reason.value.trim() || 'rejected by an admin' }, [approve, reject]));
        const done = w.status !== 'pending';
        approve.disabled = reject.disabled = done;
        return h('tr', { dataset: { withdrawal: w.withdrawal, status: w.status } },
            h('td', {}, w.withdrawal), h('td', {}, w.user_name || `#${w.user}`),
            h('td', { className: 'num' }, coins(w.amount)), h('td', {}, w.at ? dateTime(w.at) : ''),
            h('td', {}, h('span', { className: `state state-${w.status}` }, w.status)),
            h('td', {}, done ? '' : h('div', { className: 'decision' }, approve, reason, reject)));
    });
    if (rows.length === 0) {
        rows.push(h('tr', {}, h('td', { colSpan: 6, className: 'empty' }, 'Nothing is waiting')));
    }
    $('pending').replaceChildren(...rows);
}

async function decide(w, type, extra, buttons) {
    buttons.forEach((b) => {
        b.disabled = true;
    });
    showError($('admin-error'), null);
    try {
        const sig = await conn.ready();
        const r = await sig.request(type, { withdrawal: w.withdrawal, ...extra });
        w.status = r.status;
        $('admin-result').textContent = `${w.withdrawal}: ${r.status}.`;
        render();
    } catch (e) {
        showError($('admin-error'), e);
        buttons.forEach((b) => {
            b.disabled = false;
        });
    }
}

function signedOut() {
    conn.close();
    pending = [];
    $('admin-view').classList.add('hidden');
    setBadge($('status'), 'not connected', 'idle');
}

// A read-only hook for the end-to-end test (tests/e2e).
window.encoreTest = {
    get user() {
        return session.user;
    },
    get withdrawals() {
        return pending;
    },
};

document.addEventListener('DOMContentLoaded', () => {
    $('pending-refresh').addEventListener('click', refresh);
    account = setUpAccount({ session, panel: $('account-panel'), bar: $('account-bar'), allowSignUp: false,
        title: 'Sign in as an admin', onSignedIn: () => {
            $('admin-view').classList.remove('hidden');
            refresh();
        }, onSignedOut: signedOut });
});
