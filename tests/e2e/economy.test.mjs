// End-to-end test of the paid live room with real browsers against an already-running encored at
// ENCORE_URL (with the sandbox payment provider on, as by default): a singer signs up and goes on
// stage (fake audio), two adult listeners and a minor sign up on the audience page; coins are
// bought with the page's sandbox button, gifts sent from the gift bar, and every number is checked
// exactly where people see it: balances, the gift feed with its combo counter, the show board, the
// singer's earnings and statement, error messages. Talks to loopback addresses only.

import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, Harness, alertOf, hook, log, runTag, signInOnPage, signUpOnPage, waitFor } from './lib.mjs';

const TAG = runTag();
const ROOM = 'eco-' + TAG;
/** The singer's share without a contract: 50 % (the catalog's default singer_bp), rounded down. */
const DEFAULT_SINGER_BP = 5000;
const COUNT = 5;

const SINGER = { key: 'singer', name: `sia-${TAG}` };
const L1 = { key: 'l1', name: `leo-${TAG}`, birthYear: 1990 };
const L2 = { key: 'l2', name: `mia-${TAG}`, birthYear: 1985 };
const MINOR = { key: 'minor', name: `kid-${TAG}`, birthYear: new Date().getUTCFullYear() };
const AUDIENCE = [L1, L2, MINOR];
// Agents and admins are made by the operator (encore-users); run.sh makes one of each and names them
// here. Without them the contract and approval steps are skipped.
const STAFF_PASSWORD = process.env.ENCORE_E2E_STAFF_PASSWORD;
const AGENT = process.env.ENCORE_E2E_AGENT ? { key: 'agent', name: process.env.ENCORE_E2E_AGENT } : null;
const ADMIN = process.env.ENCORE_E2E_ADMIN ? { key: 'admin', name: process.env.ENCORE_E2E_ADMIN } : null;
const NO_STAFF = AGENT && ADMIN && STAFF_PASSWORD ? false
    : 'no agent and admin accounts (ENCORE_E2E_AGENT, ENCORE_E2E_ADMIN, ENCORE_E2E_STAFF_PASSWORD)';
/** The contract the agent offers, in basis points. */
const CONTRACT = { singer_bp: 6000, agent_bp: 2000 };

const h = new Harness('encore-e2e-eco');
const step = (name, fn, timeout, skip) => h.step(name, fn, timeout, skip);
const P = (who) => h.page(who.key);

/** What the tests learn on the way: the catalog, the chosen gifts, transfers, expected balances. */
const S = {};

const coinsText = (n) => `${n.toLocaleString('en-US')} ${n === 1 ? 'coin' : 'coins'}`;

/** The balance the page shows: the number in data-coins (and the text must say the same). */
async function shownBalance(page) {
    return page.evaluate(() => {
        const el = document.querySelector('#balance');
        return el.dataset.coins === undefined ? null : { coins: Number(el.dataset.coins), text: el.textContent };
    });
}

async function waitBalance(who, coins, what = `${who.name}'s balance to be ${coins}`) {
    const b = await waitFor(what, () => shownBalance(P(who)), (v) => v && v.coins === coins);
    assert.equal(b.text, coinsText(coins), `${who.name}'s balance text`);
}

/** The feed item of one transfer on a page, as data attributes and visible text. */
function feedItem(page, transfer) {
    return page.evaluate((t) => {
        const li = document.querySelector(`#gift-feed li[data-transfer="${t}"]`);
        return li ? { ...li.dataset, text: li.textContent, vip: li.querySelector('.vip')?.dataset.vip || null } : null;
    }, String(transfer));
}

/** Clicks a gift button with a count and waits for the page to show the answer (result or error). */
async function sendGift(who, giftId, count) {
    const page = P(who);
    const before = await page.evaluate(() => document.querySelector('#gift-result').dataset.transfer || '');
    await page.fill('#gift-count', String(count));
    await page.click(`#gifts button[data-gift="${giftId}"]`);
    const r = await waitFor(`${who.name}'s gift answer`, () => page.evaluate(() => ({
        result: { ...document.querySelector('#gift-result').dataset },
        text: document.querySelector('#gift-result').textContent,
        error: document.querySelector('#gift-error').dataset.code || '' })),
    (v) => v.error || (v.result.transfer && v.result.transfer !== before), { interval: 50 });
    return r;
}

/** Tops up with the n-th sandbox button and returns the coins it says it buys. */
async function topUp(who, n) {
    const page = P(who);
    const amount = Number(await page.getAttribute(`#topups button:nth-child(${n + 1})`, 'data-amount'));
    await page.click(`#topups button:nth-child(${n + 1})`);
    return amount * S.catalog.coins_per_unit / 10 ** S.catalog.currency_digits;
}

before(async () => {
    const singerBrowser = await h.launch([`--use-file-for-fake-audio-capture=${h.makeWav(440)}`]);
    await h.openPage(await singerBrowser.newContext(), SINGER.key, `/singer.html?room=${ROOM}`);
    const browser = await h.launch([]);
    const context = await browser.newContext();
    for (const who of AUDIENCE) {
        await h.openPage(context, who.key, `/?room=${ROOM}`);
    }
    if (!NO_STAFF) {
        await h.openPage(await browser.newContext(), AGENT.key, '/agent.html');
        await h.openPage(await browser.newContext(), ADMIN.key, '/admin.html');
    }
    log(`room ${ROOM} at ${BASE}`);
}, { timeout: 120000 });

after(() => h.close());

step('pages load without errors and ask to sign in', async () => {
    for (const name of Object.keys(h.pages)) {
        const page = h.page(name);
        assert.equal(await page.evaluate(() => typeof window.encoreTest), 'object', `${name} has no test hook`);
        await page.waitForSelector('#auth-form');
        assert.equal(await page.isVisible('#join-form'), false, `${name} hides the room until signed in`);
        assert.deepEqual(h.pageErrors(name), [], `${name} threw`);
    }
});

step('a singer, two adult listeners and a minor sign up on the pages', async () => {
    SINGER.user = await signUpOnPage(P(SINGER), { name: SINGER.name });
    assert.equal(SINGER.user.role, 'singer');
    for (const who of AUDIENCE) {
        who.user = await signUpOnPage(P(who), { name: who.name, birthYear: who.birthYear });
        assert.equal(who.user.role, 'listener');
        assert.equal(who.user.adult, who !== MINOR, `${who.name} adult`);
        assert.equal(await P(who).textContent('#whoami'), `${who.name} (listener)`);
    }
    // Sessions live in sessionStorage: each tab has its own.
    const tokens = await Promise.all(AUDIENCE.map((who) => hook(P(who), () => window.encoreTest.token)));
    assert.equal(new Set(tokens).size, 3, 'three tabs, three tokens');
    S.catalog = await hook(P(L1), () => fetch('/api/catalog').then((r) => r.json()));
    log(`catalog ${JSON.stringify(S.catalog)}`);
}, 120000);

step('the singer goes on stage', async () => {
    const page = P(SINGER);
    await page.waitForSelector('#join-form:not(.hidden)');
    await page.click('#join');
    await page.waitForSelector('#room-view:not(.hidden)', { timeout: 15000 });
    await page.click('#queue-join');
    await waitFor('the singer on stage and connected', () => hook(page, () => ({
        onStage: window.encoreTest.onStage, pub: window.encoreTest.publishState })),
    (v) => v.onStage && v.pub === 'connected');
    // Earnings start at zero.
    await waitFor('the singer\'s earnings', () => page.getAttribute('#earnings-balance', 'data-coins'), (v) => v === '0');
});

step('listeners join, hear the stage, and start with empty wallets', async () => {
    for (const who of AUDIENCE) {
        await P(who).waitForSelector('#join-form:not(.hidden)');
        await P(who).click('#join');
    }
    for (const who of AUDIENCE) {
        await waitFor(`${who.name} live`, () => hook(P(who), () => window.encoreTest.status), (s) => s === 'live');
        await waitFor(`${who.name} to see the singer`, () => P(who).textContent('#stage'), (t) => t === SINGER.name);
        await waitBalance(who, 0);
        const roomState = await hook(P(who), () => window.encoreTest.roomState);
        assert.equal(roomState.stage.user, SINGER.user.id, 'room.state names the singer\'s account');
    }
    // The gift bar is the catalog, prices shown.
    const buttons = await P(L1).$$eval('#gifts button', (bs) => bs.map((b) => ({ id: b.dataset.gift,
        price: Number(b.dataset.price), text: b.textContent })));
    assert.deepEqual(buttons.map((b) => [b.id, b.price]), S.catalog.gifts.map((g) => [g.id, g.price]));
    for (const [i, b] of buttons.entries()) {
        assert.equal(b.text, S.catalog.gifts[i].name + coinsText(b.price));
    }
});

step('a sandbox top-up credits exactly the coins bought', async () => {
    S.topup = await topUp(L1, 0);
    assert.ok(Number.isInteger(S.topup) && S.topup > 0, `the first pack buys ${S.topup} coins`);
    await waitFor('the top-up confirmation', () => P(L1).textContent('#topup-result'),
        (t) => t === `Added ${coinsText(S.topup)}.`);
    await waitBalance(L1, S.topup);
    assert.equal((await hook(P(L1), () => window.encoreTest.refreshWallet())).balance, S.topup);
    assert.equal((await hook(P(L2), () => window.encoreTest.refreshWallet())).balance, 0, 'L2 untouched');
    // The gift for the combo: two sends of COUNT must fit, and an odd total shows the rounding down.
    const fits = S.catalog.gifts.filter((g) => 2 * g.price * COUNT <= S.topup);
    assert.ok(fits.length > 0, 'some gift fits twice in the first pack');
    S.gift = fits.filter((g) => (g.price * COUNT) % 2 === 1).pop() || fits.pop();
    log(`gift ${S.gift.id} at ${S.gift.price}, ${COUNT} at a time`);
});

step(`a ${COUNT}x gift: the room sees it with its combo, the sender pays exactly price x count`, async () => {
    const g = S.gift;
    const total = g.price * COUNT;
    const first = await sendGift(L1, g.id, COUNT);
    assert.equal(first.error, '', `the first gift was refused: ${first.error}`);
    const firstAt = Date.now();
    // The same gift again at once: within the combo window the counter goes on.
    const second = await sendGift(L1, g.id, COUNT);
    const gap = Date.now() - firstAt;
    assert.equal(second.error, '', `the second gift was refused: ${second.error}`);
    S.transfers = [Number(first.result.transfer), Number(second.result.transfer)];
    assert.notEqual(S.transfers[0], S.transfers[1]);
    assert.equal(first.result.combo, String(COUNT));
    assert.equal(first.text, `Sent ${COUNT} × ${g.name} (${coinsText(total)}). Combo ×${COUNT}`);
    const window_ = S.catalog.combo_window_ms ?? 3000;
    if (gap < window_ - 500) {
        assert.equal(second.result.combo, String(2 * COUNT), `combo after ${gap} ms`);
    } else {
        log(`second gift ${gap} ms after the first: the combo may have restarted`);
    }
    S.combos = [COUNT, Number(second.result.combo)];
    await waitBalance(L1, S.topup - 2 * total);
    const w = await hook(P(L1), () => window.encoreTest.refreshWallet());
    assert.equal(w.balance, S.topup - 2 * total, 'wallet.get agrees');
    assert.equal(w.spent_today, 2 * total, 'spent today');
    assert.equal(await P(L1).textContent('#spent-today'), coinsText(2 * total));
    // Every member of the room shows both gifts in the feed, with the combo the sender saw.
    for (const who of [L1, L2, MINOR, SINGER]) {
        for (const [i, t] of S.transfers.entries()) {
            const item = await waitFor(`${who.name} to show transfer ${t}`, () => feedItem(P(who), t), Boolean);
            assert.equal(item.combo, String(S.combos[i]), `${who.name}: combo of gift ${i + 1}`);
            assert.equal(item.count, String(COUNT));
            assert.equal(item.gift, g.id);
            assert.equal(item.fromName, L1.name);
            assert.equal(item.from, String(L1.user.id));
            assert.ok(item.text.includes(`${L1.name} sent ${COUNT} × ${g.name}`), `${who.name} feed text: ${item.text}`);
            assert.ok(item.text.endsWith(` combo ×${S.combos[i]}`), `${who.name} feed text: ${item.text}`);
        }
    }
    // The listeners' combo counter shows the latest.
    await waitFor('L2\'s combo counter', () => P(L2).textContent('#combo'),
        (t) => t === `${L1.name}: ${g.name} combo ×${S.combos[1]}`);
    // The server's events are the ones the pages kept (no duplicates).
    const events = await hook(P(L2), () => window.encoreTest.gifts);
    assert.deepEqual(events.map((e) => e.transfer), S.transfers);
    assert.deepEqual(events.map((e) => [e.coins, e.count, e.combo, e.to.id]),
        [[total, COUNT, S.combos[0], SINGER.user.id], [total, COUNT, S.combos[1], SINGER.user.id]]);
});

step('the show leaderboard shows the sender with the exact coins', async () => {
    const total = 2 * S.gift.price * COUNT;
    for (const who of [L1, L2]) {
        const row = await waitFor(`${who.name}'s board`, () => P(who).evaluate(() =>
            [...document.querySelectorAll('#board li[data-user]')].map((li) => ({ ...li.dataset, text: li.textContent }))),
        (rows) => rows.length > 0 && rows[0].coins === String(total));
        assert.equal(row.length, 1, 'one gifter so far');
        assert.equal(row[0].user, String(L1.user.id));
        assert.equal(row[0].text, `${L1.name} ${coinsText(total)}`);
    }
    const board = await hook(P(L2), () => window.encoreTest.board);
    assert.deepEqual(board, [{ user: L1.user.id, name: L1.name, coins: total }]);
});

step('the singer\'s earnings page shows exactly the default share, rounded down', async () => {
    const part = Math.floor(S.gift.price * COUNT * DEFAULT_SINGER_BP / 10000);
    const page = P(SINGER);
    await waitFor('the singer\'s earnings', () => page.getAttribute('#earnings-balance', 'data-coins'),
        (v) => v === String(2 * part), { timeout: 15000 });
    assert.equal(await page.textContent('#earnings-balance'), coinsText(2 * part));
    const lines = await page.$$eval('#statement tr[data-kind="gift"]', (rows) => rows.map((r) => ({
        transfer: Number(r.dataset.transfer), amount: Number(r.dataset.amount), text: r.textContent })));
    assert.deepEqual(lines.map((l) => l.transfer).sort((a, b) => a - b), [...S.transfers].sort((a, b) => a - b));
    for (const l of lines) {
        assert.equal(l.amount, part, `statement line ${l.transfer}`);
        assert.ok(l.text.endsWith(`+${part}`), `statement text ${l.text}`);
    }
    S.earned = 2 * part;
});

step('a minor gets under_age on top-up and gift, and no balance change', async () => {
    const page = P(MINOR);
    await topUp(MINOR, 0);
    const top = await waitFor('the minor\'s top-up error', () => alertOf(page, '#wallet-error'), (v) => v && v.code);
    assert.equal(top.code, 'under_age');
    assert.equal(top.text, 'Accounts under 18 cannot buy coins, send gifts or buy VIP status. (under_age)');
    assert.equal(await page.textContent('#topup-result'), '');
    const cheapest = S.catalog.gifts[0];
    const r = await sendGift(MINOR, cheapest.id, 1);
    assert.equal(r.error, 'under_age');
    assert.equal((await alertOf(page, '#gift-error')).text,
        'Accounts under 18 cannot buy coins, send gifts or buy VIP status. (under_age)');
    assert.equal((await hook(page, () => window.encoreTest.refreshWallet())).balance, 0);
    await waitBalance(MINOR, 0);
    assert.deepEqual((await hook(page, () => window.encoreTest.gifts)).map((e) => e.transfer), S.transfers,
        'no gift event for the refused gift');
});

step('a gift above the balance is refused with insufficient funds, nothing moves', async () => {
    const balance = S.topup - 2 * S.gift.price * COUNT;
    const dear = S.catalog.gifts.find((g) => g.price > balance);
    const gift = dear || S.catalog.gifts[S.catalog.gifts.length - 1];
    const count = dear ? 1 : Math.floor(balance / gift.price) + 1;
    const r = await sendGift(L1, gift.id, count);
    assert.equal(r.error, 'insufficient_funds');
    assert.equal((await alertOf(P(L1), '#gift-error')).text, 'Not enough coins. (insufficient_funds)');
    await waitBalance(L1, balance);
    assert.equal((await hook(P(L1), () => window.encoreTest.refreshWallet())).balance, balance);
    await new Promise((res) => setTimeout(res, 700)); // a wrong event would have arrived by now
    assert.equal((await hook(P(L2), () => window.encoreTest.gifts)).length, 2, 'no event for a refused gift');
    assert.equal(await P(SINGER).getAttribute('#earnings-balance', 'data-coins'), String(S.earned));
});

step('a refreshed token keeps the session going', async () => {
    const page = P(L2);
    const before = await hook(page, () => window.encoreTest.token);
    const fresh = await hook(page, () => window.encoreTest.refreshToken());
    assert.ok(fresh.expires > Date.now() / 1000, 'the new token expires in the future');
    assert.equal(await hook(page, () => window.encoreTest.token), fresh.token, 'stored in the session');
    assert.notEqual(fresh.token, before);
    assert.equal((await hook(page, () => window.encoreTest.refreshWallet())).balance, 0, 'still signed in');
    assert.equal(await hook(page, () => window.encoreTest.status), 'live');
});

step('VIP status is bought for its exact price and shown as a badge', async () => {
    const page = P(L2);
    const tier = S.catalog.vip[0];
    const packs = await page.$$eval('#topups button', (bs) => bs.map((b) => Number(b.dataset.amount)));
    const coinsOf = (amount) => amount * S.catalog.coins_per_unit / 10 ** S.catalog.currency_digits;
    const n = packs.findIndex((a) => coinsOf(a) >= tier.price_per_month + S.catalog.gifts[0].price);
    assert.ok(n >= 0, 'a pack pays for the cheapest tier and a gift');
    const bought = await topUp(L2, n);
    await waitBalance(L2, bought);
    await page.selectOption('#vip-tier', tier.id);
    await page.selectOption('#vip-months', '1');
    assert.equal(await page.textContent('#vip-price'), coinsText(tier.price_per_month));
    await page.click('#vip-buy');
    await waitFor('the VIP confirmation', () => page.evaluate(() => ({
        tier: document.querySelector('#vip-status').dataset.tier, error: document.querySelector('#vip-error').dataset.code })),
    (v) => v.tier === tier.id || v.error);
    assert.equal(await page.getAttribute('#vip-status', 'data-tier'), tier.id);
    await waitBalance(L2, bought - tier.price_per_month);
    // L2's next gift carries the badge on everyone's feed.
    const rose = S.catalog.gifts[0];
    const r = await sendGift(L2, rose.id, 1);
    assert.equal(r.error, '');
    await waitBalance(L2, bought - tier.price_per_month - rose.price);
    for (const who of [L1, L2, MINOR]) {
        const item = await waitFor(`${who.name} to show L2's gift`, () => feedItem(P(who), r.result.transfer), Boolean);
        assert.equal(item.vip, tier.id, `${who.name} shows the VIP badge`);
        assert.equal(item.combo, '1');
    }
    // Coming back into the room, the VIP is announced (vip.entered) to the others.
    await page.click('#leave');
    await page.waitForSelector('#join-form:not(.hidden)');
    await page.click('#join');
    await waitFor('L2 live again', () => hook(page, () => window.encoreTest.status), (st) => st === 'live');
    const entered = await waitFor('L1 to see L2 enter', () => P(L1).evaluate((id) => {
        const li = document.querySelector(`#gift-feed li[data-vip-entered="${id}"]`);
        return li ? { text: li.textContent, vip: li.querySelector('.vip')?.dataset.vip } : null;
    }, String(L2.user.id)), Boolean);
    assert.equal(entered.vip, tier.id);
    assert.equal(entered.text, `VIP ${tier.id}${L2.name} joined the room`);
});

step('an agent offers a contract on agent.html and the singer accepts it on singer.html', async () => {
    const agent = P(AGENT);
    AGENT.user = await signInOnPage(agent, { name: AGENT.name, password: STAFF_PASSWORD });
    assert.equal(AGENT.user.role, 'agent');
    await agent.waitForSelector('#money-view:not(.hidden)');
    await agent.fill('#offer-singer', SINGER.name);
    await agent.fill('#offer-singer-share', String(CONTRACT.singer_bp / 100));
    await agent.fill('#offer-agent-share', String(CONTRACT.agent_bp / 100));
    await agent.click('#offer-form button[type="submit"]');
    await waitFor('the offer to be sent', () => agent.evaluate(() => ({
        result: document.querySelector('#offer-result').textContent,
        error: document.querySelector('#offer-error').textContent })), (v) => v.result || v.error);
    assert.equal(await agent.textContent('#offer-result'), `Offered to ${SINGER.name}: offered.`);
    const row = `#contracts tr[data-singer="${SINGER.user.id}"][data-agent="${AGENT.user.id}"]`;
    await agent.waitForSelector(`${row}[data-status="offered"]`);
    // The singer sees the offer with its shares and accepts it.
    const singer = P(SINGER);
    await singer.click('#contracts-refresh');
    await singer.waitForSelector(`${row}[data-status="offered"] button`);
    const cells = await singer.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent));
    assert.deepEqual(cells.slice(2, 5), ['60%', '20%', 'offered']);
    if (await singer.$(`${row} input.agent-name`)) {
        await singer.fill(`${row} input.agent-name`, AGENT.name); // the list gave the agent's id only
    }
    await singer.click(`${row} button`);
    await singer.waitForSelector(`${row}[data-status="active"]`);
    assert.equal(await singer.$(`${row} button`), null, 'no Accept button once active');
    await agent.click('#contracts-refresh');
    await agent.waitForSelector(`${row}[data-status="active"]`);
    assert.equal(await agent.getAttribute('#earnings-balance', 'data-coins'), '0');
}, 90000, NO_STAFF);

step('a gift under the contract is split by it, to the coin', async () => {
    const g = S.gift;
    const total = g.price * COUNT;
    const balance = (await shownBalance(P(L1))).coins;
    const bought = await topUp(L1, 0);
    await waitBalance(L1, balance + bought);
    await new Promise((res) => setTimeout(res, (S.catalog.combo_window_ms ?? 3000) + 200)); // a fresh combo
    const r = await sendGift(L1, g.id, COUNT);
    assert.equal(r.error, '');
    assert.equal(r.result.combo, String(COUNT), 'a new combo after the window');
    await waitBalance(L1, balance + bought - total);
    const singerPart = Math.floor(total * CONTRACT.singer_bp / 10000);
    const agentPart = Math.floor(total * CONTRACT.agent_bp / 10000);
    S.earned += singerPart;
    await waitFor('the singer\'s earnings under the contract', () => P(SINGER).getAttribute('#earnings-balance',
        'data-coins'), (v) => v === String(S.earned), { timeout: 15000 });
    const line = await P(SINGER).getAttribute(`#statement tr[data-transfer="${r.result.transfer}"]`, 'data-amount');
    assert.equal(line, String(singerPart));
    const agent = P(AGENT);
    await agent.click('#earnings-refresh');
    await waitFor('the agent\'s earnings', () => agent.getAttribute('#earnings-balance', 'data-coins'),
        (v) => v === String(agentPart));
    assert.equal(await agent.getAttribute(`#statement tr[data-transfer="${r.result.transfer}"]`, 'data-amount'),
        String(agentPart));
}, 90000, NO_STAFF);

step('the singer asks to withdraw part of the earnings', async () => {
    const page = P(SINGER);
    const amount = Math.max(1, Math.floor(S.earned / 2));
    await page.fill('#withdraw-amount', String(amount));
    await page.click('#withdraw-form button[type="submit"]');
    const r = await waitFor('the withdrawal answer', () => page.evaluate(() => ({
        id: document.querySelector('#withdraw-result').dataset.withdrawal || '',
        error: document.querySelector('#withdraw-error').dataset.code || '' })), (v) => v.id || v.error);
    assert.equal(r.error, '', 'withdrawal refused');
    await waitFor('the withdrawal to be listed as pending', () => page.evaluate((id) => {
        const li = document.querySelector(`#withdrawals li[data-withdrawal="${id}"]`);
        return li ? { ...li.dataset } : null;
    }, r.id), (v) => v && v.status === 'pending' && v.amount === String(amount));
    await waitFor('the earnings to drop by the amount held', () => page.getAttribute('#earnings-balance', 'data-coins'),
        (v) => v === String(S.earned - amount));
    S.withdrawal = { id: r.id, amount };
    S.earned -= amount;
});

/** Requests a withdrawal on the singer page and returns its id. */
async function requestWithdrawal(amount) {
    const page = P(SINGER);
    const before = await page.evaluate(() => document.querySelector('#withdraw-result').dataset.withdrawal || '');
    await page.fill('#withdraw-amount', String(amount));
    await page.click('#withdraw-form button[type="submit"]');
    const r = await waitFor('the withdrawal answer', () => page.evaluate(() => ({
        id: document.querySelector('#withdraw-result').dataset.withdrawal || '',
        error: document.querySelector('#withdraw-error').dataset.code || '' })),
    (v) => (v.id && v.id !== before) || v.error);
    assert.equal(r.error, '', 'withdrawal refused');
    return r.id;
}

step('an admin approves one withdrawal and rejects another on admin.html', async () => {
    const singer = P(SINGER);
    // A second, small request, to be rejected: its coins come back.
    const second = await requestWithdrawal(1);
    await waitFor('the hold of the second request', () => singer.getAttribute('#earnings-balance', 'data-coins'),
        (v) => v === String(S.earned - 1));
    const admin = P(ADMIN);
    ADMIN.user = await signInOnPage(admin, { name: ADMIN.name, password: STAFF_PASSWORD });
    assert.equal(ADMIN.user.role, 'admin');
    const row = (id) => `#pending tr[data-withdrawal="${id}"]`;
    await admin.waitForSelector(row(S.withdrawal.id));
    await admin.waitForSelector(row(second));
    const cells = await admin.$$eval(`${row(S.withdrawal.id)} td`, (tds) => tds.map((td) => td.textContent));
    assert.equal(cells[2], coinsText(S.withdrawal.amount));
    assert.equal(cells[4], 'pending');
    await admin.click(`${row(S.withdrawal.id)} button[data-action="approve"]`);
    await admin.waitForSelector(`${row(S.withdrawal.id)}[data-status="paid"]`);
    await admin.fill(`${row(second)} input.reason`, 'test: wrong amount');
    await admin.click(`${row(second)} button[data-action="reject"]`);
    await admin.waitForSelector(`${row(second)}[data-status="rejected"]`);
    assert.equal(await admin.textContent('#admin-result'), `${second}: rejected.`);
    // The singer sees both decisions; the rejected coin is back in the earnings.
    await singer.click('#earnings-refresh');
    await waitFor('the singer to see the decisions', () => singer.evaluate(([a, b]) => [a, b].map((id) =>
        document.querySelector(`#withdrawals li[data-withdrawal="${id}"]`)?.dataset.status),
    [S.withdrawal.id, second]), (v) => v[0] === 'paid' && v[1] === 'rejected');
    await waitFor('the rejected coin to return', () => singer.getAttribute('#earnings-balance', 'data-coins'),
        (v) => v === String(S.earned));
    // A listener may not see the admin's list, whatever a page asks.
    const refused = await hook(P(L1), () => window.encoreTest.tryRequest('withdraw.approve', { withdrawal: 'wd-0-x' }));
    assert.equal(refused, 'forbidden');
}, 90000, NO_STAFF);

step('a refused token sends the page back to sign-in, and signing in again works', async () => {
    const page = P(MINOR);
    const token = await hook(page, () => window.encoreTest.token);
    // Same header and claims, another signature: the server answers auth with unauthorized.
    const forged = token.slice(0, token.lastIndexOf('.') + 1) + 'A'.repeat(43);
    await hook(page, (t) => window.encoreTest.setToken(t), forged);
    await hook(page, () => window.encoreTest.dropSocket());
    await page.waitForSelector('#account-panel:not(.hidden)', { timeout: 20000 });
    const err = await alertOf(page, '#auth-error');
    assert.equal(err.code, 'unauthorized');
    assert.equal(await page.isVisible('#room-view'), false, 'the room is hidden');
    assert.equal(await page.evaluate(() => window.sessionStorage.getItem('encore.session')), null,
        'the session is forgotten');
    assert.equal(await hook(page, () => window.encoreTest.status), 'stopped');
    const user = await signInOnPage(page, { name: MINOR.name });
    assert.equal(user.id, MINOR.user.id);
    await page.waitForSelector('#join-form:not(.hidden)');
});

step('no page threw', async () => {
    for (const name of Object.keys(h.pages)) {
        assert.deepEqual(h.pageErrors(name), [], `${name} threw`);
    }
});
