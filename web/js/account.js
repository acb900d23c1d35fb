// Accounts over HTTP (docs/protocol.md "Accounts, coins and gifts"): sign-up, sign-in, the catalog and
// the sandbox checkout, plus the tab's session (token, expiry, user) kept in sessionStorage. Main
// thread; it never decides who may do what: the server's answers and errors are shown as they are.

import { EncoreError } from './encore.js';

const STORAGE_KEY = 'encore.session';

/** Minor units per unit of the catalog's currency: 10^currency_digits (JPY 1, CNY 100). */
export function minorUnits(catalog) {
    const digits = Number.isInteger(catalog.currency_digits) ? catalog.currency_digits
        : catalog.currency === 'JPY' ? 0 : 2;
    return 10 ** digits;
}

/**
 * Sends a JSON request to the server that served this page and resolves with the parsed answer.
 * A non-2xx answer rejects with an EncoreError carrying the server's `error` code (or `http_<status>`
 * when the body says nothing) and `status`; a network failure rejects with code `disconnected`.
 */
export async function apiRequest(path, { method = 'GET', body, token } = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
    }
    if (token) {
        headers.Authorization = 'Bearer ' + token;
    }
    let res;
    try {
        res = await fetch(path, { method, headers, cache: 'no-store', credentials: 'omit',
            body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
        throw new EncoreError('disconnected', 'the server cannot be reached: ' + e.message);
    }
    let data = null;
    try {
        data = await res.json();
    } catch (e) {
        data = null;
    }
    if (!res.ok) {
        const code = data && typeof data.error === 'string' ? data.error : `http_${res.status}`;
        const err = new EncoreError(code, data && data.message ? data.message : `HTTP ${res.status}`);
        err.status = res.status;
        throw err;
    }
    return data || {};
}

/** POST /api/signup: resolves {user, token, expires}. `role` is 'listener' or 'singer'. */
export function signUp({ name, password, birthYear, role = 'listener' }) {
    return apiRequest('/api/signup', { method: 'POST',
        body: { name, password, birth_year: birthYear, role } });
}

/** POST /api/signin: resolves {user, token, expires}. */
export function signIn({ name, password }) {
    return apiRequest('/api/signin', { method: 'POST', body: { name, password } });
}

let catalogPromise = null;

/** GET /api/catalog, fetched once per page (a failed fetch is retried on the next call). */
export function getCatalog() {
    if (!catalogPromise) {
        catalogPromise = apiRequest('/api/catalog').catch((e) => {
            catalogPromise = null;
            throw e;
        });
    }
    return catalogPromise;
}

/** POST /api/sandbox/checkout: buys coins with the sandbox provider; resolves {event, coins, credited}. */
export function sandboxCheckout(token, amount, currency) {
    return apiRequest('/api/sandbox/checkout', { method: 'POST', token, body: { amount, currency } });
}

/**
 * The tab's signed-in account. `token`, `expires` (Unix seconds) and `user` ({id, name, role, adult})
 * come from sign-up, sign-in or `token.refresh`; sessionStorage keeps them for this tab only (other
 * tabs sign in on their own). `onChange(session)` listeners hear sign-in, refresh and sign-out.
 */
export class Session {
    constructor(storage = window.sessionStorage) {
        this.storage = storage;
        this.token = null;
        this.expires = 0;
        this.user = null;
        this.listeners = new Set();
        try {
            const saved = JSON.parse(storage.getItem(STORAGE_KEY) || 'null');
            if (saved && typeof saved.token === 'string' && saved.user && Number.isInteger(saved.expires)) {
                Object.assign(this, { token: saved.token, expires: saved.expires, user: saved.user });
            }
        } catch (e) {
            // Nothing usable stored.
        }
        if (!this.valid) {
            this.clear({ quiet: true });
        }
    }

    /** Signed in with a token that is not about to expire. */
    get valid() {
        return !!this.token && this.expires > Date.now() / 1000 + 5;
    }

    /** Stores the answer of sign-up or sign-in ({user, token, expires}). */
    signedIn({ user, token, expires }) {
        Object.assign(this, { user, token, expires });
        this.save();
    }

    /** Stores a refreshed token ({token, expires}) of the same user. */
    update({ token, expires }) {
        Object.assign(this, { token, expires });
        this.save();
    }

    save() {
        try {
            this.storage.setItem(STORAGE_KEY, JSON.stringify({ token: this.token, expires: this.expires,
                user: this.user }));
        } catch (e) {
            // Storage refused (private mode): the session lasts as long as the page.
        }
        this.notify();
    }

    clear({ quiet = false } = {}) {
        this.token = null;
        this.expires = 0;
        this.user = null;
        try {
            this.storage.removeItem(STORAGE_KEY);
        } catch (e) {
            // Nothing to remove.
        }
        if (!quiet) {
            this.notify();
        }
    }

    onChange(fn) {
        this.listeners.add(fn);
        return () => this.listeners.delete(fn);
    }

    notify() {
        for (const fn of [...this.listeners]) {
            fn(this);
        }
    }
}
