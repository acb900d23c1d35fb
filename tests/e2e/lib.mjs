// Shared helpers of the browser end-to-end tests: Chromium launch flags (RECIPES.md), pages with
// their console and websocket logs, polling, diagnostics on failure, tone WAVs, and signing up or in
// through the pages' own account panel. Talks to loopback addresses only.

import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const BASE = process.env.ENCORE_URL || 'http://127.0.0.1:18080';
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/** One password for every test account (the policy wants at least 8 characters). */
export const PASSWORD = 'correct horse battery';

{
    const host = new URL(BASE).hostname;
    if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== 'localhost' && host !== '[::1]') {
        throw new Error(`ENCORE_URL must be a loopback address, not ${host}`);
    }
}

/** A short random tag: account names and rooms stay unique when a test runs twice on one server. */
export function runTag() {
    return Math.random().toString(36).slice(2, 7);
}

// RECIPES: headless=new in args (not Playwright's headless mode, which mutes audio), fake devices,
// loopback candidates, no mDNS obfuscation of local addresses.
const BASE_ARGS = [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
    // Several tabs share one browser: keep the hidden ones running at full speed.
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
];

export function log(...args) {
    console.error(...args);
}

/**
 * The state of one test file: its browsers, its pages (name -> {page, logs}), a scratch directory,
 * and whether a step failed (later steps are then not run).
 */
export class Harness {
    constructor(prefix) {
        this.tmp = mkdtempSync(join(tmpdir(), `${prefix}-`));
        this.browsers = [];
        this.pages = {};
        this.failed = false;
    }

    /** A stereo WAV of a tone, the right channel `rightGain` times the left. */
    makeWav(hz, rightGain = 0.25) {
        const path = join(this.tmp, `tone-${hz}.wav`);
        execFileSync('sox', ['-n', '-r', '48000', '-c', '2', '-b', '16', path,
            'synth', '60', 'sine', String(hz), 'channels', '2', 'vol', '0.5', 'remix', '1', `2v${rightGain}`]);
        return path;
    }

    async launch(extraArgs = []) {
        const browser = await chromium.launch({ executablePath: CHROMIUM, headless: false,
            args: [...BASE_ARGS, ...extraArgs], timeout: 30000 });
        this.browsers.push(browser);
        return browser;
    }

    /** Opens `path` in a new tab of `context`, recording its console, errors and websocket frames. */
    async openPage(context, name, path) {
        const page = await context.newPage();
        const entry = { page, logs: [] };
        const stamp = () => new Date().toISOString().slice(11, 23);
        page.on('console', (m) => entry.logs.push(`${stamp()} ${m.type()}: ${m.text()}`));
        page.on('pageerror', (e) => entry.logs.push(`${stamp()} PAGE ERROR: ${e.stack || e.message}`));
        page.on('requestfailed', (r) => entry.logs.push(`${stamp()} request failed: ${r.url()} ${r.failure()?.errorText}`));
        page.on('response', (r) => {
            if (r.url().includes('/api/')) {
                entry.logs.push(`${stamp()} http ${r.request().method()} ${new URL(r.url()).pathname} -> ${r.status()}`);
            }
        });
        page.on('websocket', (ws) => {
            // Tokens are secrets even in a test: never print them.
            const scrub = (p) => String(p).replace(/"token":"[^"]*"/g, '"token":"…"').slice(0, 400);
            ws.on('framesent', (f) => entry.logs.push(`${stamp()} ws> ${scrub(f.payload)}`));
            ws.on('framereceived', (f) => entry.logs.push(`${stamp()} ws< ${scrub(f.payload)}`));
            ws.on('close', () => entry.logs.push(`${stamp()} ws closed`));
        });
        this.pages[name] = entry;
        await page.goto(`${BASE}${path}`, { waitUntil: 'load' });
        return page;
    }

    page(name) {
        return this.pages[name].page;
    }

    pageErrors(name) {
        return this.pages[name].logs.filter((l) => l.includes('PAGE ERROR'));
    }

    async diagnostics() {
        for (const [name, { page, logs }] of Object.entries(this.pages)) {
            log(`---- ${name}: ${page.url()}`);
            try {
                const state = await page.evaluate(async () => {
                    const t = window.encoreTest;
                    if (!t) {
                        return null;
                    }
                    return { status: t.status, you: t.you, user: t.user, roomState: t.roomState, onStage: t.onStage,
                        publishState: t.publishState, wallet: t.wallet, earnings: t.earnings,
                        peer: t.peer ? t.peer() : undefined, peak: t.peak ? t.peak() : undefined,
                        channelRms: t.channelRms ? t.channelRms() : undefined,
                        stats: t.stats ? await t.stats() : undefined };
                });
                log(`${name} state: ${JSON.stringify(state)}`);
                const errors = await page.evaluate(() => [...document.querySelectorAll('[role="alert"]')]
                    .filter((e) => e.textContent).map((e) => `#${e.id}: ${e.textContent}`));
                if (errors.length) {
                    log(`${name} alerts: ${errors.join(' | ')}`);
                }
            } catch (e) {
                log(`${name} state unavailable: ${e.message}`);
            }
            for (const l of logs.slice(-100)) {
                log(`${name} ${l}`);
            }
        }
    }

    /**
     * A test body; on failure prints every page's state, alerts and logs. Later steps then fail
     * fast. `skip` (a reason) reports the step as skipped.
     */
    step(name, fn, timeout = 90000, skip = false) {
        test(name, { timeout, skip }, async () => {
            if (this.failed) {
                throw new Error('not run: an earlier step failed');
            }
            try {
                await fn();
            } catch (e) {
                this.failed = true;
                log(`step "${name}" failed: ${e.message}`);
                await this.diagnostics();
                throw e;
            }
        });
    }

    async close() {
        if (process.env.ENCORE_E2E_VERBOSE && !this.failed) {
            await this.diagnostics();
        }
        await Promise.allSettled(this.browsers.map((b) => b.close()));
        rmSync(this.tmp, { recursive: true, force: true });
    }
}

/** Polls `fn` (async, returns a value) until `ok(value)`; throws with the last value on timeout. */
export async function waitFor(what, fn, ok, { timeout = 20000, interval = 250 } = {}) {
    const end = Date.now() + timeout;
    let last;
    let lastError;
    while (Date.now() < end) {
        try {
            last = await fn();
            lastError = undefined;
            if (ok(last)) {
                return last;
            }
        } catch (e) {
            lastError = e;
        }
        await new Promise((r) => setTimeout(r, interval));
    }
    throw new Error(`timed out after ${timeout} ms waiting for ${what}; last value: ` +
        JSON.stringify(last) + (lastError ? `; last error: ${lastError.message}` : ''));
}

export const hook = (page, expr, arg) => page.evaluate(expr, arg);

/** The text and data-code of an alert element, e.g. {text: 'Not enough coins. (insufficient_funds)', code: ...}. */
export function alertOf(page, selector) {
    return page.evaluate((sel) => {
        const el = document.querySelector(sel);
        return el ? { text: el.textContent, code: el.dataset.code || '' } : null;
    }, selector);
}

/**
 * Creates an account through the page's own panel (the page decides the role: singer.html makes
 * singers) and waits until the page shows it signed in. Sign-ups are rate-limited per address
 * (a burst of 20, then one a second): a `rate_limited` answer is retried.
 */
export async function signUpOnPage(page, { name, birthYear = 1990, password = PASSWORD }) {
    await page.waitForSelector('#auth-form');
    for (let attempt = 0; ; attempt++) {
        if ((await page.textContent('#auth-submit')) !== 'Create account') {
            await page.click('#auth-mode');
        }
        await page.fill('#auth-name', name);
        await page.fill('#auth-password', password);
        await page.fill('#auth-birth-year', String(birthYear));
        await page.click('#auth-submit');
        const r = await waitFor(`${name} to be signed up`, () => page.evaluate(() => ({
            user: window.encoreTest && window.encoreTest.user,
            error: document.querySelector('#auth-error').dataset.code || '',
            busy: document.querySelector('#auth-submit').disabled })),
        (v) => (v.user && v.user.name) || (v.error && !v.busy), { timeout: 30000 });
        if (r.user) {
            await page.waitForSelector('#account-panel.hidden', { state: 'attached' });
            return r.user;
        }
        if (r.error !== 'rate_limited' || attempt >= 5) {
            throw new Error(`sign-up of ${name} refused: ${r.error} ` +
                `(${await page.textContent('#auth-error')})`);
        }
        await new Promise((res) => setTimeout(res, 1500));
    }
}

/** Signs in through the page's panel with an existing account; resolves with the user. */
export async function signInOnPage(page, { name, password = PASSWORD }) {
    await page.waitForSelector('#auth-form');
    if ((await page.textContent('#auth-submit')) !== 'Sign in') {
        await page.click('#auth-mode');
    }
    await page.fill('#auth-name', name);
    await page.fill('#auth-password', password);
    await page.click('#auth-submit');
    const r = await waitFor(`${name} to be signed in`, () => page.evaluate(() => ({
        user: window.encoreTest && window.encoreTest.user,
        error: document.querySelector('#auth-error').dataset.code || '',
        busy: document.querySelector('#auth-submit').disabled })),
    (v) => (v.user && v.user.name) || (v.error && !v.busy), { timeout: 30000 });
    if (!r.user) {
        throw new Error(`sign-in of ${name} refused: ${r.error} (${await page.textContent('#auth-error')})`);
    }
    return r.user;
}
