// The agent page: sign in (agent accounts are made by the operator), offer contracts to singers by
// name, see them, and see and withdraw the agent's earnings. Main thread; what an agent may do is
// the server's decision: the page shows its answers and errors.

import { Connection } from './encore.js';
import { Session } from './account.js';
import { Contracts } from './contracts.js';
import { Earnings } from './earnings.js';
import { setUpAccount } from './signin.js';
import { $, setBadge } from './ui.js';

const session = new Session();
let account = null;
const conn = new Connection({ session,
    onClose: () => setBadge($('status'), 'disconnected', 'bad'),
    onUnauthorized: () => account.signOut('Your session has ended: please sign in again.') });
const contracts = new Contracts(conn, 'agent');
const earnings = new Earnings(conn);

async function signedIn() {
    $('money-view').classList.remove('hidden');
    setBadge($('status'), 'connecting', 'warn');
    try {
        await conn.ready();
        setBadge($('status'), 'connected', 'ok');
    } catch (e) {
        setBadge($('status'), 'not connected', 'bad');
    }
    contracts.refresh();
    earnings.refresh();
}

function signedOut() {
    conn.close();
    $('money-view').classList.add('hidden');
    setBadge($('status'), 'not connected', 'idle');
}

// A read-only hook for the end-to-end test (tests/e2e).
window.encoreTest = {
    get user() {
        return session.user;
    },
    get contracts() {
        return contracts.contracts;
    },
    get earnings() {
        return earnings.balance;
    },
};

document.addEventListener('DOMContentLoaded', () => {
    $('contracts-refresh').addEventListener('click', () => contracts.refresh());
    account = setUpAccount({ session, panel: $('account-panel'), bar: $('account-bar'), allowSignUp: false,
        title: 'Sign in as an agent', onSignedIn: signedIn, onSignedOut: signedOut });
});
