// End-to-end test of the stage with real browsers: two Chromium singers (each capturing a tone from
// a WAV file) and three Chromium listeners against an already-running encored at ENCORE_URL.
// Every page signs up through its own account panel first (singers on the singer page, so they
// get the singer role). It proves that listeners hear the singer on stage, that a hand-over
// switches what they hear without any renegotiation, that they decode stereo with little loss, and
// that a listener whose websocket drops comes back by itself (authenticating again). Talks to
// loopback addresses only.

import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, Harness, hook, log, runTag, signUpOnPage, waitFor } from './lib.mjs';

const TAG = runTag();
const ROOM = 'e2e-' + TAG;

// The singers' tones. The right channel is 12 dB below the left so that a listener can tell a
// stereo decode (left/right level ratio ~4) from a mono one (ratio ~1). Account names are 3-32 of
// [A-Za-z0-9_.-]; the tag keeps them unique on a server that has seen this test before.
const SINGERS = [
    { key: 'A', name: `ann-${TAG}`, hz: 440 },
    { key: 'B', name: `bo-${TAG}`, hz: 660 },
];
const RIGHT_GAIN = 0.25;
const LISTENERS = [`lia-${TAG}`, `max-${TAG}`, `noa-${TAG}`];

const h = new Harness('encore-e2e');
const pages = h.pages;
const step = (name, fn, timeout) => h.step(name, fn, timeout);

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
    await page.waitForSelector('#join-form:not(.hidden)');
    await page.click('#join');
    await page.waitForSelector('#room-view:not(.hidden)', { timeout: 15000 });
    await waitFor(`${s.name} to join the room`, () => hook(page, () => window.encoreTest.you), Boolean);
    await page.click('#queue-join');
    return page;
}

before(async () => {
    for (const s of SINGERS) {
        s.wav = h.makeWav(s.hz, RIGHT_GAIN);
        const browser = await h.launch([`--use-file-for-fake-audio-capture=${s.wav}`]);
        const context = await browser.newContext();
        await h.openPage(context, s.key, `/singer.html?room=${ROOM}`);
    }
    const browser = await h.launch([]);
    const context = await browser.newContext();
    for (const n of LISTENERS) {
        await h.openPage(context, n, `/?room=${ROOM}`);
    }
    log(`room ${ROOM} at ${BASE}`);
}, { timeout: 120000 });

after(() => h.close());

step('pages load without errors', async () => {
    for (const [name, { page }] of Object.entries(pages)) {
        assert.equal(await page.evaluate(() => typeof window.encoreTest), 'object', `${name} has no test hook`);
        assert.deepEqual(h.pageErrors(name), [], `${name} threw`);
    }
});

step('everyone signs up through the pages', async () => {
    for (const s of SINGERS) {
        const user = await signUpOnPage(pages[s.key].page, { name: s.name });
        assert.equal(user.role, 'singer', `${s.name} signed up on the singer page is a singer`);
    }
    for (const n of LISTENERS) {
        const user = await signUpOnPage(pages[n].page, { name: n });
        assert.equal(user.role, 'listener', `${n} is a listener`);
        assert.equal(await pages[n].page.textContent('#join-as'), n);
    }
}, 120000);

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
        await pages[n].page.waitForSelector('#join-form:not(.hidden)');
        await pages[n].page.click('#join');
    }
    await Promise.all(LISTENERS.map((n) => waitFor(`${n} to be live`,
        () => hook(pages[n].page, () => window.encoreTest.status), (s) => s === 'live')));
    await allHear(440);
    for (const n of LISTENERS) {
        const st = await hook(pages[n].page, () => window.encoreTest.roomState);
        assert.equal(st.stage && st.stage.name, SINGERS[0].name, `${n} sees ${SINGERS[0].name} on stage`);
        assert.equal(await pages[n].page.textContent('#stage'), SINGERS[0].name);
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
    await waitFor(`listeners to see ${SINGERS[1].name} next`, () => hook(pages[LISTENERS[0]].page,
        () => window.encoreTest.roomState), (st) => st.queue.length === 1 && st.queue[0].name === SINGERS[1].name);
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
        assert.equal(now.stage && now.stage.name, SINGERS[1].name, `${n} sees ${SINGERS[1].name} on stage`);
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
    for (const name of Object.keys(pages)) {
        assert.deepEqual(h.pageErrors(name), [], `${name} threw`);
    }
});
