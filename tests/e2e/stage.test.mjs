// End-to-end test of the stage with real browsers: two Chromium singers (each capturing a tone from
// a WAV file) and three Chromium listeners against an already-running encored at ENCORE_URL.
// It proves that listeners hear the singer on stage, that a hand-over switches what they hear
// without any renegotiation, that they decode stereo with little loss, and that a listener whose
// websocket drops comes back by itself. Talks to loopback addresses only.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.ENCORE_URL || 'http://127.0.0.1:18080';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ROOM = 'e2e-' + Math.random().toString(36).slice(2, 8);

{
    const host = new URL(BASE).hostname;
    if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== 'localhost' && host !== '[::1]') {
        throw new Error(`ENCORE_URL must be a loopback address, not ${host}`);
    }
}

// The singers' tones. The right channel is 12 dB below the left so that a listener can tell a
// stereo decode (left/right level ratio ~4) from a mono one (ratio ~1).
const SINGERS = [
    { key: 'A', name: 'Ann', hz: 440 },
    { key: 'B', name: 'Bo', hz: 660 },
];
const RIGHT_GAIN = 0.25;
const LISTENERS = ['Lia', 'Max', 'Noa'];

// RECIPES: headless=new in args (not Playwright's headless mode, which mutes audio), fake devices,
// loopback candidates, no mDNS obfuscation of local addresses.
const BASE_ARGS = [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
    // Three listener tabs share one browser: keep the hidden ones running at full speed.
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
];

const tmp = mkdtempSync(join(tmpdir(), 'encore-e2e-'));
const browsers = [];
const pages = {}; // name -> { page, logs: [] }
let failed = false;

function log(...args) {
    console.error(...args);
}

function makeWav(hz) {
    const path = join(tmp, `tone-${hz}.wav`);
    execFileSync('sox', ['-n', '-r', '48000', '-c', '2', '-b', '16', path,
        'synth', '60', 'sine', String(hz), 'channels', '2', 'vol', '0.5', 'remix', '1', `2v${RIGHT_GAIN}`]);
    return path;
}

async function launch(extraArgs) {
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: false,
        args: [...BASE_ARGS, ...extraArgs], timeout: 30000 });
    browsers.push(browser);
    return browser;
}

async function openPage(context, name, path) {
    const page = await context.newPage();
    const entry = { page, logs: [] };
    const stamp = () => new Date().toISOString().slice(11, 23);
    page.on('console', (m) => entry.logs.push(`${stamp()} ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => entry.logs.push(`${stamp()} PAGE ERROR: ${e.stack || e.message}`));
    page.on('requestfailed', (r) => entry.logs.push(`${stamp()} request failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on('websocket', (ws) => {
        ws.on('framesent', (f) => entry.logs.push(`${stamp()} ws> ${String(f.payload).slice(0, 400)}`));
        ws.on('framereceived', (f) => entry.logs.push(`${stamp()} ws< ${String(f.payload).slice(0, 400)}`));
        ws.on('close', () => entry.logs.push(`${stamp()} ws closed`));
    });
    pages[name] = entry;
    await page.goto(`${BASE}${path}`, { waitUntil: 'load' });
    return page;
}

/** Polls `fn` (async, returns a value) until `ok(value)`; throws with the last value on timeout. */
async function waitFor(what, fn, ok, { timeout = 20000, interval = 250 } = {}) {
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

const hook = (page, expr) => page.evaluate(expr);

async function diagnostics() {
    for (const [name, { page, logs }] of Object.entries(pages)) {
        log(`---- ${name}: ${page.url()}`);
        try {
            const state = await page.evaluate(async () => {
                const t = window.encoreTest;
                if (!t) {
                    return null;
                }
                return { status: t.status, you: t.you, roomState: t.roomState, onStage: t.onStage,
                    publishState: t.publishState, peer: t.peer ? t.peer() : undefined,
                    peak: t.peak ? t.peak() : undefined, channelRms: t.channelRms ? t.channelRms() : undefined,
                    stats: await t.stats() };
            });
            log(`${name} state: ${JSON.stringify(state)}`);
        } catch (e) {
            log(`${name} state unavailable: ${e.message}`);
        }
        for (const l of logs.slice(-80)) {
            log(`${name} ${l}`);
        }
    }
}

/** Runs a test body; on failure prints every page's state, stats and logs before failing. */
function step(name, fn, timeout = 90000) {
    test(name, { timeout }, async () => {
        if (failed) {
            throw new Error('not run: an earlier step failed');
        }
        try {
            await fn();
        } catch (e) {
            failed = true;
            log(`step "${name}" failed: ${e.message}`);
            await diagnostics();
            throw e;
        }
    });
}

function expectBin(peak, hz) {
    return peak && peak.db > -70 && Math.abs(peak.bin - Math.round(hz / peak.binHz)) <= 1;
}

/** Waits until every listener's dominant frequency is `hz` (within one FFT bin). */
async function allHear(hz) {
    await Promise.all(LISTENERS.map((n) => waitFor(`${n} to hear ${hz} Hz`,
        () => hook(pages[n].page, () => window.encoreTest.peak()), (p) => expectBin(p, hz),
        { timeout: 25000 })));
}

async function singerJoinsQueue(s) {
    const page = pages[s.key].page;
    await page.click('#join');
    await page.waitForSelector('#room-view:not(.hidden)', { timeout: 15000 });
    await waitFor(`${s.name} to join the room`, () => hook(page, () => window.encoreTest.you), Boolean);
    await page.click('#queue-join');
    return page;
}

before(async () => {
    for (const s of SINGERS) {
        s.wav = makeWav(s.hz);
        const browser = await launch([`--use-file-for-fake-audio-capture=${s.wav}`]);
        const context = await browser.newContext();
        await openPage(context, s.key,
            `/singer.html?room=${ROOM}&name=${encodeURIComponent(s.name)}`);
    }
    const browser = await launch([]);
    const context = await browser.newContext();
    for (const n of LISTENERS) {
        await openPage(context, n, `/?room=${ROOM}&name=${encodeURIComponent(n)}`);
    }
    log(`room ${ROOM} at ${BASE}`);
}, { timeout: 120000 });

after(async () => {
    if (process.env.ENCORE_E2E_VERBOSE && !failed) {
        await diagnostics();
    }
    await Promise.allSettled(browsers.map((b) => b.close()));
    rmSync(tmp, { recursive: true, force: true });
});

step('pages load without errors', async () => {
    for (const [name, { page, logs }] of Object.entries(pages)) {
        assert.equal(await page.evaluate(() => typeof window.encoreTest), 'object', `${name} has no test hook`);
        assert.deepEqual(logs.filter((l) => l.includes('PAGE ERROR')), [], `${name} threw`);
    }
});

step('singer A goes on stage', async () => {
    const a = SINGERS[0];
    const page = await singerJoinsQueue(a);
    await waitFor('A on stage and connected', () => hook(page, () => ({
        onStage: window.encoreTest.onStage, pub: window.encoreTest.publishState })),
    (v) => v.onStage && v.pub === 'connected');
    await page.waitForSelector('#on-stage:not(.hidden)');
    // What A sends is its tone, at music quality.
    const peak = await waitFor('A to send 440 Hz', () => hook(page, () => window.encoreTest.peak()),
        (p) => expectBin(p, a.hz));
    log(`A mix peak ${JSON.stringify(peak)}`);
    const out = await waitFor('A to send packets', () => hook(page, () => window.encoreTest.stats()),
        (st) => st.outbound.length === 1 && st.outbound[0].packetsSent > 50);
    log(`A outbound ${JSON.stringify(out.outbound[0])}`);
});

step('three listeners join and hear 440 Hz', async () => {
    for (const n of LISTENERS) {
        await pages[n].page.click('#join');
    }
    await Promise.all(LISTENERS.map((n) => waitFor(`${n} to be live`,
        () => hook(pages[n].page, () => window.encoreTest.status), (s) => s === 'live')));
    await allHear(440);
    for (const n of LISTENERS) {
        const st = await hook(pages[n].page, () => window.encoreTest.roomState);
        assert.equal(st.stage && st.stage.name, 'Ann', `${n} sees Ann on stage`);
        assert.equal(await pages[n].page.textContent('#stage'), 'Ann');
    }
    await waitFor('the room to count 3 listeners',
        () => hook(pages[LISTENERS[0]].page, () => window.encoreTest.roomState), (st) => st.listeners === 3);
});

const baseline = {};

step('singer B queues and connects early', async () => {
    const b = SINGERS[1];
    const page = await singerJoinsQueue(b);
    await waitFor('B first in the queue with a connected publisher', () => hook(page, () => ({
        position: window.encoreTest.position, onStage: window.encoreTest.onStage,
        pub: window.encoreTest.publishState })),
    (v) => v.position === 1 && !v.onStage && v.pub === 'connected');
    await waitFor('listeners to see Bo next', () => hook(pages[LISTENERS[0]].page,
        () => window.encoreTest.roomState), (st) => st.queue.length === 1 && st.queue[0].name === 'Bo');
    // B is connected but not on stage: listeners still hear A only.
    await allHear(440);
    for (const n of LISTENERS) {
        const page = pages[n].page;
        baseline[n] = await page.evaluate(async () => {
            window.__e2ePc = window.encoreTest.pc();
            const st = await window.encoreTest.stats();
            return { peer: window.encoreTest.peer(), ssrc: st.inbound.map((i) => i.ssrc) };
        });
        assert.equal(baseline[n].ssrc.length, 1, `${n} receives one stream`);
    }
});

step('hand-over: listeners hear 660 Hz on the same, never renegotiated connection', async () => {
    const a = pages.A.page;
    await a.click('#stop');
    await waitFor('A off stage', () => hook(a, () => ({ onStage: window.encoreTest.onStage,
        pub: window.encoreTest.publishState })), (v) => !v.onStage && v.pub === 'closed');
    await waitFor('B on stage', () => hook(pages.B.page, () => window.encoreTest.onStage), Boolean);
    await allHear(660);
    for (const n of LISTENERS) {
        const page = pages[n].page;
        const now = await page.evaluate(async () => {
            const st = await window.encoreTest.stats();
            return { samePc: window.__e2ePc === window.encoreTest.pc(), peer: window.encoreTest.peer(),
                ssrc: st.inbound.map((i) => i.ssrc), stage: window.encoreTest.roomState.stage };
        });
        assert.equal(now.stage && now.stage.name, 'Bo', `${n} sees Bo on stage`);
        assert.ok(now.samePc, `${n} kept its RTCPeerConnection`);
        assert.deepEqual(now.ssrc, baseline[n].ssrc, `${n} still receives the same SSRC`);
        const before = baseline[n].peer;
        for (const k of ['sessions', 'peers', 'subscribes', 'iceRestarts', 'reconnects', 'negotiations',
            'signalingChanges']) {
            assert.equal(now.peer[k], before[k], `${n}: ${k} changed during the hand-over`);
        }
        assert.equal(now.peer.signalingState, 'stable');
        assert.equal(now.peer.subscribes, 1, `${n} sent exactly one subscribe`);
        assert.equal(now.peer.negotiations, 1, `${n} negotiated exactly once`);
    }
});

step('listeners decode stereo with little loss', async () => {
    for (const n of LISTENERS) {
        const page = pages[n].page;
        const s1 = await hook(page, () => window.encoreTest.stats());
        await new Promise((r) => setTimeout(r, 2000));
        const s2 = await hook(page, () => window.encoreTest.stats());
        const [i1, i2] = [s1.inbound[0], s2.inbound[0]];
        log(`${n} inbound ${JSON.stringify(i2)}`);
        assert.ok(i2.codec, `${n} has codec stats`);
        assert.match(i2.codec.mimeType, /opus/i);
        assert.equal(i2.codec.channels, 2, `${n} codec channels`);
        // About 2 s of 48 kHz audio decoded between the two samples (generous bounds).
        const samples = i2.totalSamplesReceived - i1.totalSamplesReceived;
        assert.ok(samples > 48000 && samples < 5 * 48000, `${n} decoded ${samples} samples in 2 s`);
        const packets = i2.packetsReceived - i1.packetsReceived;
        assert.ok(packets > 60, `${n} received ${packets} packets in 2 s`);
        assert.ok(i2.packetsLost <= Math.max(5, 0.01 * i2.packetsReceived),
            `${n} lost ${i2.packetsLost} of ${i2.packetsReceived} packets`);
        // The tone's right channel is 12 dB quieter: a stereo decode keeps that.
        const rms = await waitFor(`${n} to hear two channels`, () => hook(page,
            () => window.encoreTest.channelRms()), (r) => r && r[0] > 0.01 && r[1] > 0.002);
        const ratio = rms[0] / rms[1];
        log(`${n} channel rms ${rms.map((x) => x.toFixed(4)).join(' / ')} ratio ${ratio.toFixed(2)}`);
        assert.ok(ratio > 2.5 && ratio < 6.5, `${n} left/right ratio ${ratio.toFixed(2)} should be ~4 (stereo)`);
    }
});

step('a listener whose websocket drops rejoins and hears the stage again', async () => {
    const n = LISTENERS[0];
    const page = pages[n].page;
    const before = await hook(page, () => window.encoreTest.peer());
    await hook(page, () => window.encoreTest.dropSocket());
    await waitFor(`${n} to notice the drop`, () => hook(page, () => window.encoreTest.peer()),
        (p) => p === null || p.reconnects > before.reconnects, { interval: 50 });
    await waitFor(`${n} to be live again`, () => hook(page, () => window.encoreTest.status), (s) => s === 'live');
    const after = await hook(page, () => window.encoreTest.peer());
    assert.equal(after.sessions, before.sessions + 1, 'one new session');
    await waitFor(`${n} to hear 660 Hz again`, () => hook(page, () => window.encoreTest.peak()),
        (p) => expectBin(p, 660));
    // The server forgot the old connection: still three listeners, not four.
    await waitFor('the room to count 3 listeners', () => hook(pages[LISTENERS[1]].page,
        () => window.encoreTest.roomState), (st) => st.listeners === 3 && st.members === 5);
});

step('listeners get the server\'s sender reports for the stage track', async () => {
    // The server terminates RTCP and sends its own SRs for the stage track (its NTP/RTP mapping is
    // unit-tested in test-stage). Chromium turns the latest SR into remote-outbound-rtp stats: the
    // SR must describe the stage SSRC, carry the server's wall clock (this machine's clock), and
    // count what was sent to this listener.
    for (const n of LISTENERS.slice(1)) {
        const page = pages[n].page;
        const st = await waitFor(`${n} to receive sender reports`, () => hook(page,
            () => window.encoreTest.stats()), (x) => x.remoteOutbound && x.remoteOutbound.reportsSent >= 2,
            { timeout: 15000 });
        const ro = st.remoteOutbound;
        const nowMs = Date.now();
        log(`${n} SR stats ${JSON.stringify(ro)} now ${nowMs}`);
        assert.equal(ro.ssrc, st.inbound[0].ssrc, `${n} SRs describe the stage track`);
        assert.ok(Math.abs(nowMs - ro.remoteTimestamp) < 3000,
            `${n} SR NTP time ${ro.remoteTimestamp} within 3 s of now ${nowMs}`);
        assert.ok(ro.packetsSent > 0 && ro.packetsSent <= st.inbound[0].packetsReceived + 200,
            `${n} SR packet count ${ro.packetsSent} vs received ${st.inbound[0].packetsReceived}`);
    }
});

step('no page threw', async () => {
    for (const [name, { logs }] of Object.entries(pages)) {
        assert.deepEqual(logs.filter((l) => l.includes('PAGE ERROR')), [], `${name} threw`);
    }
});
