#!/usr/bin/python3
# Integration test: the money side over the real protocol (docs/protocol.md "Accounts, coins and
# gifts"), the proofs of issue 3 that need a running encored: the auth gate and the Origin check,
# signed webhooks (stale, altered, wrong secret, replayed: nothing credited), sandbox top-ups,
# gifts (exact balances, split legs, combos, the gift and board events), bad input (each refused
# with its code and no balance change), 100 parallel gifts from a wallet that affords 33, 100
# parallel copies of one key, VIP, an agent's contract changing the split, withdrawals approved
# and rejected, derived state rebuilt after a restart, and encore-audit on the ledger afterwards.
# Runs on SQLite, and again on PostgreSQL (a fresh database per run) when ENCORE_TEST_PG is set.
import collections
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from encore_client import (Account, RawWebSocket, Server, Signaling,  # noqa: E402
                           make_token, metric_sum, payment_event, pg_database, run_test,
                           run_until, sleep, webhook_signature)

SINGER_BP = 4321
DAILY_CAP = 3000
COMBO_MS = 1500
CONFIG = {
    'accounts': {'auth_timeout': 2000},
    'economy': {'currency': 'CNY', 'coins_per_unit': 10, 'singer_bp': SINGER_BP,
                'combo_window_ms': COMBO_MS, 'daily_cap': DAILY_CAP, 'max_count': 9999},
    'gift.rose': {'name': 'Rose', 'price': 1, 'animation': 'petals', 'tier': 1},
    'gift.heart': {'name': 'Heart', 'price': 7, 'animation': 'hearts', 'tier': 1},
    'gift.car': {'name': 'Sports Car', 'price': 520, 'animation': 'car', 'tier': 3},
    'gift.rocket': {'name': 'Rocket', 'price': 2000, 'animation': 'launch', 'tier': 5},
}
PRICES = {'rose': 1, 'heart': 7, 'car': 520, 'rocket': 2000}
CHECKS = 116  # tap.ok calls per backend run


def split(total, singer_bp, agent_bp=0):
    """docs/ledger.md: singer = floor(total*singer_bp/10000), agent likewise, platform the rest."""
    return total * singer_bp // 10000, total * agent_bp // 10000


class Model:
    """What every balance must be: wallets, earnings and gift totals per user id."""

    def __init__(self):
        self.wallet = collections.Counter()
        self.earnings = collections.Counter()
        self.gifted = collections.Counter()      # coins each sender spent on gifts
        self.gifted_to = collections.defaultdict(collections.Counter)  # singer -> sender -> coins
        self.gifts = 0                           # committed gift transfers

    def gift(self, sender, singer, total, singer_bp=SINGER_BP, agent=None, agent_bp=0):
        s, a = split(total, singer_bp, agent_bp)
        self.gifts += 1
        self.wallet[sender] -= total
        self.earnings[singer] += s
        if agent:
            self.earnings[agent] += a
        self.gifted[sender] += total
        self.gifted_to[singer][sender] += total


def balance(sig):
    return sig.call('wallet.get')['balance']


def earnings(sig):
    return sig.call('earnings.get')['balance']


def err(frame):
    """(code, field) of an error frame, or ('result', None)."""
    if frame.get('type') == 'error':
        return frame.get('code'), frame.get('field')
    return frame.get('type'), None


def gift(sig, to, gift_id, count, key, timeout=10.0):
    return sig.request('gift.send', timeout, gift=gift_id, count=count, to=to, key=key)


def gift_events(sig, since=0):
    return [f for f in sig.frames[since:] if f.get('type') == 'gift' and 'id' not in f]


def pipeline(conns, frames_per_conn, timeout=30.0):
    """Sends every conn its frames (dicts with ids) at once, then waits for all the answers;
    returns them in the order sent."""
    for sig, frames in zip(conns, frames_per_conn):
        for f in frames:
            sig.send(f)
    want = [(sig, json.dumps(f['id'])) for sig, frames in zip(conns, frames_per_conn)
            for f in frames]
    run_until(lambda: all(k in sig.replies or sig.closed for sig, k in want), timeout)
    return [sig.replies.pop(k, {'type': 'missing'}) for sig, k in want]


# ---------------------------------------------------------------------------------------------

def auth_checks(tap, srv):
    ok = tap.ok
    acct = srv.signup('gate')
    kid, key = srv.token_keys()[0]
    now = int(time.time())

    w = Signaling(srv.ws_url, name='gate', auth=False)
    f = w.request('room.join', room='gate', name='x')
    ok(err(f) == ('unauthorized', None), 'room.join before auth: unauthorized', f)
    ok(w.ping(), 'ping is answered before auth')
    cases = [
        ('expired token', make_token(key, kid, acct.id, iat=now - 7200, exp=now - 3600), 'expired'),
        ('token signed with another key', make_token(os.urandom(32), kid, acct.id),
         'bad_signature'),
        ('token with alg none', make_token(None, kid, acct.id, alg='none'), 'bad_alg'),
        ('token with the role changed to admin after signing',
         acct.token.split('.')[0] + '.' + make_token(key, kid, acct.id, role='admin')
         .split('.')[1] + '.' + acct.token.split('.')[2], 'bad_signature'),
        ('token of a key id the server does not have', make_token(key, 'nokid', acct.id),
         'unknown_kid'),
        ('not yet valid token', make_token(key, kid, acct.id, iat=now + 3600), 'not_yet_valid'),
    ]
    for desc, token, why in cases:
        f = w.request('auth', token=token)
        ok(err(f)[0] == 'unauthorized' and why in (f.get('message') or ''),
           f'auth with a bad token ({desc}): unauthorized, {why}', f)
    f = w.request('room.join', room='gate', name='x')
    ok(err(f) == ('unauthorized', None) and not w.closed,
       'after refused tokens the connection is still unauthenticated', f)
    user = w.call('auth', token=acct.token)['user']
    ok(user.get('id') == acct.id and user.get('name') == acct.name and
       user.get('role') == 'listener' and user.get('adult') is True,
       'auth with the sign-up token answers the user', user)
    f = w.request('room.join', room='gate', name='x')
    ok(f.get('type') == 'result', 'room.join after auth works', f)
    f = w.request('queue.join')
    ok(err(f)[0] == 'forbidden', 'a listener may not queue to sing: forbidden', f)
    other = srv.signup('other')
    f = w.request('auth', token=other.token)
    ok(err(f)[0] == 'forbidden' and w.ping(),
       'auth with another user\'s token on a signed-in connection: forbidden', f)
    d = w.call('token.refresh')
    again = Signaling(srv.ws_url, name='again', account=Account(acct.name, acct.password,
                                                                d.get('token'), d.get('expires'),
                                                                {}))
    ok(again.user.get('id') == acct.id and d.get('expires', 0) > now,
       'token.refresh gives a token that opens a new connection as the same user', d)
    again.close()
    st, ans = srv.http_post('/api/signin', {'name': acct.name, 'password': 'not the password'})
    ok(st == 401 and ans.get('error') == 'bad_credentials',
       'sign-in with a wrong password: 401 bad_credentials', f'{st} {ans}')

    # Guessing one account's password from many addresses: the per-account bucket (burst 20) stops
    # it even though no single address is limited.
    victim = srv.signup('victim')
    answers = []
    for i in range(21):
        conn = http.client.HTTPConnection('127.0.0.1', srv.port, timeout=10,
                                          source_address=(f'127.0.9.{i + 1}', 0))
        conn.request('POST', '/api/signin',
                     json.dumps({'name': victim.name.upper(), 'password': 'wrong password'}),
                     {'Content-Type': 'application/json'})
        resp = conn.getresponse()
        answers.append((resp.status, json.loads(resp.read() or b'{}').get('error')))
        conn.close()
    ok(answers[:20] == [(401, 'bad_credentials')] * 20 and answers[20] == (429, 'rate_limited'),
       'sign-ins to one account from 21 addresses: the 21st is rate_limited (per-account bucket)',
       answers[-3:])

    idle = Signaling(srv.ws_url, name='idle', auth=False)
    t0 = time.monotonic()
    run_until(lambda: idle.closed, 6)
    ok(idle.closed and idle.close_code == 1008 and 1.5 <= time.monotonic() - t0 <= 5,
       'a connection that sends no auth is closed with 1008 after auth_timeout (2 s)',
       f'closed={idle.closed} code={idle.close_code} after {time.monotonic() - t0:.1f} s')

    statuses = {}
    for origin in ('http://evil.example', 'null', f'http://127.0.0.1:{srv.port}.evil.example',
                   'https://127.0.0.1:%d' % srv.port):
        try:
            RawWebSocket(srv.port, origin=origin).close()
            statuses[origin] = 101
        except ConnectionError as e:
            statuses[origin] = getattr(e, 'status', None)
    ok(all(v == 403 for v in statuses.values()), 'handshakes from other origins are refused (403)',
       statuses)
    try:
        Signaling(srv.ws_url, name='evil', auth=False, origin='http://evil.example')
        soup_refused = None
    except ConnectionError as e:
        soup_refused = str(e)
    ok(soup_refused is not None and '403' in soup_refused,
       'a client sending Origin http://evil.example cannot open the websocket', soup_refused)
    own = Signaling(srv.ws_url, name='own', origin=srv.origin)
    ok(own.user and own.ping(), f'the server\'s own origin {srv.origin} opens and authenticates',
       own.user)
    m = srv.metrics()
    refused = metric_sum(m, lambda k: k.startswith('encore_ws_refused_total') and 'origin' in k)
    ok(refused >= 5, '/metrics counts the refused origins', {k: v for k, v in m.items()
                                                             if 'refused' in k})
    s1, b1 = srv.sandbox_topup('', 600)
    s2, b2 = srv.sandbox_topup(make_token(os.urandom(32), kid, acct.id), 600)
    ok(s1 == 401 and s2 == 401 and b2.get('error') == 'unauthorized',
       'sandbox checkout without a token or with a forged one: 401', f'{s1} {b1}; {s2} {b2}')
    for s in (w, own):
        s.close()


def topup_checks(tap, srv, model):
    ok = tap.ok
    buyer = srv.signup('buyer')
    b = Signaling(srv.ws_url, name='buyer', account=buyer)
    ok(balance(b) == 0, 'a new wallet is empty')

    st, ans = srv.sandbox_topup(buyer.token, 600)
    ok(st == 200 and ans.get('coins') == 60 and ans.get('credited') is True and
       str(ans.get('event', '')).startswith('sbx_') and balance(b) == 60,
       'sandbox checkout of 6.00 CNY credits 60 coins (10 per unit)', f'{st} {ans}')
    model.wallet[buyer.id] += 60
    bad = {}
    for amount, cur in ((605, 'CNY'), (600, 'USD'), (-600, 'CNY'), (0, 'CNY'), (600.5, 'CNY'),
                        ('600', 'CNY'), (10 ** 12, 'CNY')):
        bad[(amount, cur)] = srv.sandbox_topup(buyer.token, amount, cur)[0]
    ok(all(v == 400 for v in bad.values()) and balance(b) == 60,
       'sandbox checkout of 6.05, USD, negative, zero, fractional, string and huge amounts: 400, '
       'nothing credited', f'{bad} balance {balance(b)}')

    def post(body, **kw):
        return srv.post_webhook(body, **kw)

    tag = os.urandom(4).hex()
    ev1 = payment_event(f'evt_{tag}_1', buyer.id, 1230)
    sig1 = webhook_signature(srv.provider_secret, ev1)
    st, ans = post(ev1, signature=sig1)
    ok(st == 200 and ans.get('credited') is True and ans.get('duplicate') is False and
       balance(b) == 183, 'a signed webhook of 12.30 CNY credits 123 coins', f'{st} {ans}')
    model.wallet[buyer.id] += 123
    st, ans = post(ev1, signature=sig1)
    ok(st == 200 and ans.get('duplicate') is True and balance(b) == 183,
       'the same request replayed: duplicate, nothing credited', f'{st} {ans}')
    st, ans = post(ev1)
    ok(st == 200 and ans.get('duplicate') is True and balance(b) == 183,
       'the same event signed again later: duplicate, nothing credited', f'{st} {ans}')
    st, ans = post(payment_event(f'evt_{tag}_1', buyer.id, 99990))
    ok(st == 409 and balance(b) == 183,
       'the same event id with another amount: 409, nothing credited', f'{st} {ans}')

    refusals = {}
    ev2 = payment_event(f'evt_{tag}_2', buyer.id, 5000)
    refusals['stale'] = post(ev2, t=int(time.time()) - 400)
    refusals['future'] = post(ev2, t=int(time.time()) + 400)
    altered = ev2.replace(b'5000', b'9000')
    refusals['altered'] = post(altered, signature=webhook_signature(srv.provider_secret, ev2))
    refusals['wrong secret'] = post(ev2, secret=os.urandom(32))
    refusals['sandbox secret'] = post(ev2, secret=srv.sandbox_secret())
    refusals['no signature'] = post(ev2, signature='')
    codes = {k: (s, a.get('error')) for k, (s, a) in refusals.items()}
    want = {'stale': (401, 'stale'), 'future': (401, 'stale'), 'altered': (401, 'bad_signature'),
            'wrong secret': (401, 'bad_signature'), 'sandbox secret': (401, 'bad_signature'),
            'no signature': (401, 'bad_signature')}
    ok(codes == want and balance(b) == 183,
       'stale, future, altered, wrongly keyed and unsigned webhooks: 401, nothing credited',
       f'{codes} balance {balance(b)}')
    m = srv.metrics()
    ok(m.get('encore_topups_total{outcome="bad_signature"}') == 6 and
       m.get('encore_topups_total{outcome="duplicate"}') == 2,
       '/metrics: 6 bad signatures, 2 duplicates',
       {k: v for k, v in m.items() if 'topups' in k})
    st, ans = post(ev2)
    ok(st == 200 and ans.get('credited') is True and ans.get('duplicate') is False and
       balance(b) == 683, 'the refused event, properly signed, is credited once (500 coins)',
       f'{st} {ans}')
    model.wallet[buyer.id] += 500
    st1, a1 = post(payment_event(f'evt_{tag}_3', 987654321, 1000))
    st2, a2 = post(ev2, provider='nosuchpay')
    st3, a3 = post(b'{"id":"evt_x","type":"payment.succeeded","user_id":1,"amount":1.5,'
                   b'"currency":"CNY"}')
    ok(st1 == 422 and st2 == 404 and st3 == 400 and balance(b) == 683,
       'webhooks for an unknown account (422), an unknown provider (404), a malformed event (400)',
       f'{st1} {a1}; {st2} {a2}; {st3} {a3}')
    st, ans = post(payment_event(f'evt_{tag}_4', buyer.id, 700, type_='payment.refunded'))
    ok(st == 200 and ans.get('credited') is False and balance(b) == 683,
       'an event of another type is acknowledged, nothing credited', f'{st} {ans}')
    return buyer, b


def gift_checks(tap, srv, model, buyer, bsig):
    ok = tap.ok
    room = 'stage1'
    singer = Signaling(srv.ws_url, name='star', role='singer')
    singer.call('room.join', room=room, name='star')
    pos = singer.call('queue.join')['position']
    sid = singer.user['id']
    bsig.call('room.join', room=room, name='buyer')
    obs = Signaling(srv.ws_url, name='obs')
    obs.call('room.join', room=room, name='obs')
    ok(pos == 0 and singer.user['role'] == 'singer', 'a singer goes on stage', singer.user)
    mark = obs.mark()

    f = gift(bsig, sid, 'rose', 3, 'g1')
    d = f.get('data') or {}
    t1 = d.get('transfer')
    ok(f.get('type') == 'result' and isinstance(t1, int) and d.get('coins') == 3 and
       d.get('combo') == 3 and d.get('replayed') is False and balance(bsig) == 680,
       'gift.send rose x3: coins 3, combo 3, balance 683 -> 680', f)
    model.gift(buyer.id, sid, 3)
    want = {'type': 'gift', 'from': {'id': buyer.id, 'name': buyer.name},
            'to': {'id': sid, 'name': singer.account.name}, 'gift': 'rose', 'name': 'Rose',
            'count': 3, 'combo': 3, 'coins': 3, 'animation': 'petals', 'tier': 1, 'transfer': t1}
    ev = obs.wait_event('gift', 5, since=mark)
    if ev and isinstance(ev.get('from'), dict) and ev['from'].get('vip', 0) is None:
        ev = dict(ev, **{'from': {k: v for k, v in ev['from'].items() if k != 'vip'}})
    ok(ev == want, 'another member of the room receives the gift event with exact fields '
       '(from.vip absent or null without VIP)', f'got {ev}\nwant {want}')
    f = gift(bsig, sid, 'rose', 2, 'g2')
    ok((f.get('data') or {}).get('combo') == 5, 'the same gift again within the window: combo 5', f)
    model.gift(buyer.id, sid, 2)
    f = gift(bsig, sid, 'rose', 3, 'g1')
    d = f.get('data') or {}
    sleep(0.6)
    n_t1 = sum(1 for e in gift_events(obs, mark) if e.get('transfer') == t1)
    ok(d.get('transfer') == t1 and d.get('replayed') is True and balance(bsig) == 678 and
       n_t1 == 1, 'a retry with key g1: the same transfer, replayed, no charge, no second event',
       f'{f}; events for {t1}: {n_t1}')
    f = gift(bsig, sid, 'rose', 4, 'g1')
    ok(err(f)[0] == 'idempotency_conflict' and balance(bsig) == 678,
       'key g1 with another count: idempotency_conflict, no charge', f)
    sleep(COMBO_MS / 1000 + 0.3)
    f = gift(bsig, sid, 'rose', 1, 'g3')
    ok((f.get('data') or {}).get('combo') == 1, 'after the combo window the count starts over', f)
    model.gift(buyer.id, sid, 1)
    f = gift(bsig, sid, 'heart', 3, 'g4')
    ok((f.get('data') or {}).get('coins') == 21 and balance(bsig) == 656,
       'heart x3 costs 21 coins', f)
    model.gift(buyer.id, sid, 21)
    f = gift(bsig, sid, 'car', 2, 'g5')
    ok(err(f)[0] == 'insufficient_funds' and balance(bsig) == 656,
       'a gift the wallet cannot pay (1040 of 656): insufficient_funds, no charge', f)
    e = earnings(singer)
    ok(e == model.earnings[sid] == 1 + 0 + 0 + 9,
       f'singer earnings are floor(total*{SINGER_BP}/10000) per gift: 1+0+0+9 = 10',
       f'earnings {e}, model {model.earnings[sid]}')
    lines = singer.call('earnings.get', limit=10)['lines']
    gl = [(x.get('kind'), x.get('gift'), x.get('count'), x.get('from'), x.get('amount'))
          for x in lines]
    ok(gl == [('gift', 'heart', 3, buyer.id, 9), ('gift', 'rose', 3, buyer.id, 1)] and
       lines[1].get('transfer') == t1,
       'earnings.get lists the two gifts that earned a coin, newest first (the 0-coin shares of '
       'rose x2 and x1 have no leg)', lines)
    board = obs.wait_frame(lambda x: x.get('type') == 'board' and x.get('entries') ==
                           [{'user': buyer.id, 'name': buyer.name, 'coins': 27}], 3, since=mark)
    ok(board is not None and isinstance(board.get('show'), str),
       'the room receives a board event: the buyer with 27 coins',
       [x for x in obs.frames[mark:] if x.get('type') == 'board'])
    want_entries = [{'user': buyer.id, 'name': buyer.name, 'coins': 27}]
    got = {scope: bsig.call('board.get', scope=scope, period='day', singer=sid)['entries']
           for scope in ('show', 'singer', 'overall')}
    ok(all(v == want_entries for v in got.values()),
       'board.get show / singer (day) / overall (day): the buyer with 27 coins', got)
    return singer, obs, room


def bad_input_checks(tap, srv, model, buyer, bsig, singer, obs, room):
    ok = tap.ok
    sid = singer.user['id']
    before = (balance(bsig), earnings(singer))
    cases = [(-1, ('bad_count', 'count')), (0, ('bad_count', 'count')),
             (10000, ('bad_count', 'count')), (10 ** 12, ('bad_count', 'count')),
             (10 ** 18, ('invalid_field', 'count')), (1.5, ('invalid_field', 'count')),
             (1e3, ('invalid_field', 'count')), ('3', ('invalid_field', 'count')),
             (None, ('invalid_field', 'count')), (True, ('invalid_field', 'count'))]
    for i, (count, want) in enumerate(cases):
        f = gift(bsig, sid, 'rose', count, f'bad{i}')
        ok(err(f) == want, f'count {count!r}: {want[0]}', f)
    f = bsig.request('gift.send', gift='rose', to=sid, key='bad-nocount')
    ok(err(f) == ('invalid_field', 'count'), 'count missing: invalid_field', f)
    f = gift(bsig, sid, 'unicorn', 1, 'bad-gift')
    ok(err(f) == ('unknown_gift', 'gift'), 'unknown gift: unknown_gift', f)
    f = gift(bsig, obs.user['id'], 'rose', 1, 'bad-to')
    ok(err(f) == ('not_on_stage', 'to'), 'a gift to a member who is not on stage: not_on_stage', f)
    f = gift(bsig, 987654321, 'rose', 1, 'bad-to2')
    ok(err(f) == ('not_on_stage', 'to'), 'a gift to a user who does not exist: not_on_stage', f)
    f = gift(singer, sid, 'rose', 1, 'bad-self')
    ok(err(f)[0] == 'self_gift', 'a singer sending to themselves: self_gift', f)
    f = gift(bsig, sid, 'rose', 1, 'bad key!')
    ok(err(f)[0] in ('invalid_field', 'bad_key') and err(f)[1] == 'key',
       'a key with a space and "!": refused (field key)', f)
    f = gift(obs, sid, 'rose', 1, 'broke')
    ok(err(f)[0] == 'insufficient_funds', 'a gift from an empty wallet: insufficient_funds', f)
    lone = Signaling(srv.ws_url, name='lone', account=buyer)
    f = gift(lone, sid, 'rose', 1, 'bad-noroom')
    ok(err(f)[0] == 'not_in_room', 'a gift from a connection in no room: not_in_room', f)
    f1, f2 = lone.request('earnings.get'), lone.request('withdraw.list')
    ok(err(f1)[0] == 'forbidden' and err(f2)[0] == 'forbidden',
       'a listener has no earnings page and no withdrawals: forbidden', f'{f1} {f2}')
    lone.close()
    after = (balance(bsig), earnings(singer))
    ok(after == before, 'no refused gift moved a coin', f'{before} -> {after}')

    # Under age: born this year.
    year = time.gmtime().tm_year
    kid = srv.signup('kid', birth_year=year)
    ksig = Signaling(srv.ws_url, name='kid', account=kid)
    ksig.call('room.join', room=room, name='kid')
    ok(ksig.user.get('adult') is False, 'an account born this year is not adult', ksig.user)
    f = gift(ksig, sid, 'rose', 1, 'k1')
    ok(err(f)[0] == 'under_age', 'gift.send by a minor: under_age', f)
    f = ksig.request('vip.buy', tier='silver', months=1, key='k2')
    ok(err(f)[0] == 'under_age', 'vip.buy by a minor: under_age', f)
    st, ans = srv.sandbox_topup(kid.token, 600)
    ok(st == 403 and ans.get('error') == 'under_age', 'sandbox checkout by a minor: 403 under_age',
       f'{st} {ans}')
    st, ans = srv.post_webhook(payment_event(f'evt_kid_{os.urandom(3).hex()}', kid.id, 1000))
    ok(st == 200 and balance(ksig) == 0,
       'a provider payment for a minor is held, not put in the wallet', f'{st} {ans}')

    # The daily cap (3000 coins): 2000 + 520 + 480 = 3000 pass, one coin more does not.
    capper = srv.signup('capper')
    st, _ = srv.post_webhook(payment_event(f'evt_cap_{os.urandom(3).hex()}', capper.id, 40000))
    csig = Signaling(srv.ws_url, name='capper', account=capper)
    csig.call('room.join', room=room, name='capper')
    ok(st == 200 and balance(csig) == 4000, 'the capper has 4000 coins')
    model.wallet[capper.id] += 4000
    r = [gift(csig, sid, 'rocket', 1, 'c1'), gift(csig, sid, 'car', 1, 'c2')]
    for total in (2000, 520):
        model.gift(capper.id, sid, total)
    f = gift(csig, sid, 'rose', 481, 'c3')
    ok(all(x.get('type') == 'result' for x in r) and err(f) == ('daily_cap', 'count') and
       balance(csig) == 1480, 'spending past the daily cap (2520 + 481 > 3000): daily_cap',
       f'{r} {f}')
    f = gift(csig, sid, 'rose', 480, 'c4')
    model.gift(capper.id, sid, 480)
    w = csig.call('wallet.get')
    ok(f.get('type') == 'result' and w.get('balance') == 1000 and w.get('spent_today') == 3000 and
       w.get('daily_cap') == DAILY_CAP, 'up to the cap exactly: spent_today 3000', f'{f} {w}')
    f1 = gift(csig, sid, 'rose', 1, 'c5')
    f2 = csig.request('vip.buy', tier='silver', months=1, key='c6')
    ok(err(f1)[0] == 'daily_cap' and err(f2)[0] == 'daily_cap' and balance(csig) == 1000,
       'one coin more, or a VIP month, is over the cap: daily_cap, no charge', f'{f1} {f2}')
    ok(earnings(singer) == model.earnings[sid], 'singer earnings follow the model exactly',
       f'{earnings(singer)} vs {model.earnings[sid]}')
    for s in (ksig, csig):
        s.close()


def concurrency_checks(tap, srv, model, singer, obs, room):
    ok = tap.ok
    sid = singer.user['id']
    # 100 gifts of 7 coins in parallel from a wallet of 235 coins: 33 fit, 4 coins remain.
    spender = srv.signup('spender')
    srv.post_webhook(payment_event(f'evt_sp_{os.urandom(3).hex()}', spender.id, 2350))
    conns = [Signaling(srv.ws_url, name=f'sp{i}', account=spender) for i in range(4)]
    for i, c in enumerate(conns):
        c.call('room.join', room=room, name=f'sp{i}')
    ok(balance(conns[0]) == 235, 'the spender has 235 coins')
    model.wallet[spender.id] += 235
    e0 = earnings(singer)
    frames = [[{'type': 'gift.send', 'id': f'p{c}-{i}', 'gift': 'heart', 'count': 1, 'to': sid,
                'key': f'par-{c}-{i}'} for i in range(25)] for c in range(4)]
    t0 = time.monotonic()
    answers = pipeline(conns, frames)
    took = time.monotonic() - t0
    kinds = collections.Counter(f.get('type') if f.get('type') == 'result' else f.get('code')
                                for f in answers)
    transfers = {(f.get('data') or {}).get('transfer') for f in answers
                 if f.get('type') == 'result'}
    ok(kinds == {'result': 33, 'insufficient_funds': 67} and len(transfers) == 33,
       '100 parallel gifts of 7 from 235 coins on 4 connections: exactly 33 succeed',
       f'{dict(kinds)} distinct transfers {len(transfers)} in {took:.2f} s')
    for _ in range(33):
        model.gift(spender.id, sid, 7)
    ok(balance(conns[0]) == 4 and earnings(singer) == e0 + 33 * 3,
       'the wallet ends at exactly 4 coins and the singer got 33 x floor(7*0.4321) = 99',
       f'balance {balance(conns[0])}, earnings {earnings(singer)} (before {e0})')

    # 100 parallel copies of one key: one transfer.
    twin = srv.signup('twin')
    srv.post_webhook(payment_event(f'evt_tw_{os.urandom(3).hex()}', twin.id, 1000))
    tconns = [Signaling(srv.ws_url, name=f'tw{i}', account=twin) for i in range(4)]
    for i, c in enumerate(tconns):
        c.call('room.join', room=room, name=f'tw{i}')
    model.wallet[twin.id] += 100
    mark = obs.mark()
    frames = [[{'type': 'gift.send', 'id': f'same{c}-{i}', 'gift': 'heart', 'count': 1, 'to': sid,
                'key': 'one-key'} for i in range(25)] for c in range(4)]
    answers = pipeline(tconns, frames)
    results = [f.get('data') or {} for f in answers if f.get('type') == 'result']
    ids = {d.get('transfer') for d in results}
    fresh = sum(1 for d in results if d.get('replayed') is False)
    sleep(0.5)
    events = [e for e in gift_events(obs, mark) if e.get('from', {}).get('id') == twin.id]
    ok(len(results) == 100 and len(ids) == 1 and fresh == 1 and len(events) == 1,
       '100 parallel copies of one key: 100 answers, one transfer, one not replayed, one event',
       f'{len(results)} results, transfers {ids}, fresh {fresh}, events {len(events)}; errors '
       f'{[f for f in answers if f.get("type") != "result"][:3]}')
    model.gift(twin.id, sid, 7)
    ok(balance(tconns[0]) == 93, 'the twin wallet paid once: 100 -> 93', balance(tconns[0]))
    for c in conns + tconns:
        c.close()


def vip_checks(tap, srv, model, singer, obs, room):
    ok = tap.ok
    vip = srv.signup('vip')
    srv.post_webhook(payment_event(f'evt_vip_{os.urandom(3).hex()}', vip.id, 10000))
    model.wallet[vip.id] += 1000
    v = Signaling(srv.ws_url, name='vip', account=vip)
    now = time.time()
    f = v.request('vip.buy', tier='silver', months=1, key='v1')
    d = f.get('data') or {}
    exp = d.get('expires') or 0
    ok(f.get('type') == 'result' and d.get('tier') == 'silver' and d.get('replayed') is False and
       abs(exp - (now + 30 * 86400)) < 120 and balance(v) == 700,
       'vip.buy silver for a month: 300 coins, expires in 30 days', f)
    model.wallet[vip.id] -= 300
    w = v.call('wallet.get')
    ok(w.get('vip') == {'tier': 'silver', 'expires': exp}, 'wallet.get shows the VIP status', w)
    f2 = v.request('vip.buy', tier='silver', months=1, key='v1')
    ok((f2.get('data') or {}).get('transfer') == d.get('transfer') and
       (f2.get('data') or {}).get('replayed') is True and balance(v) == 700,
       'vip.buy retried with its key: the same transfer, no charge', f2)
    f3 = v.request('vip.buy', tier='platinum', months=1, key='v2')
    f4 = v.request('vip.buy', tier='silver', months=0, key='v3')
    f5 = v.request('vip.buy', tier='silver', months=13, key='v4')
    ok(err(f3)[0] == 'unknown_tier' and err(f4)[1] == 'months' and err(f5)[1] == 'months' and
       balance(v) == 700, 'unknown tier, 0 and 13 months: refused, no charge', f'{f3} {f4} {f5}')
    mark = obs.mark()
    v.call('room.join', room=room, name='vip')
    ev = obs.wait_event('vip.entered', 5, since=mark)
    want = {'type': 'vip.entered', 'user': {'id': vip.id, 'name': vip.name, 'vip': 'silver'}}
    ok(ev == want, 'the room gets vip.entered when the VIP joins', f'{ev} want {want}')
    mark = obs.mark()
    f = gift(v, singer.user['id'], 'heart', 1, 'vg1')
    model.gift(vip.id, singer.user['id'], 7)
    ev = obs.wait_event('gift', 5, since=mark)
    ok(f.get('type') == 'result' and ev and ev.get('from') == {'id': vip.id, 'name': vip.name,
                                                                 'vip': 'silver'},
       'a VIP\'s gift event carries the badge', ev)
    return vip, v


def contract_checks(tap, srv, model, other_singer):
    ok = tap.ok
    agent = srv.add_user('agent', 'agent')
    admin = srv.add_user('admin', 'admin')
    ok(agent.user.get('role') == 'agent' and admin.user.get('role') == 'admin',
       'encore-users made an agent and an admin who can sign in', f'{agent.user} {admin.user}')
    room = 'stage2'
    s2 = Signaling(srv.ws_url, name='bo', role='singer')
    s2.call('room.join', room=room, name='bo')
    s2.call('queue.join')
    sid = s2.user['id']
    fan = srv.signup('fan')
    srv.post_webhook(payment_event(f'evt_fan_{os.urandom(3).hex()}', fan.id, 10000))
    model.wallet[fan.id] += 1000
    fsig = Signaling(srv.ws_url, name='fan', account=fan)
    fsig.call('room.join', room=room, name='fan')
    gift(fsig, sid, 'rose', 10, 'f1')
    model.gift(fan.id, sid, 10)
    ok(earnings(s2) == 4, 'without a contract the singer gets floor(10*0.4321) = 4', earnings(s2))

    ag = Signaling(srv.ws_url, name='agent', account=agent)
    f = fsig.request('contract.offer', singer=s2.account.name, singer_bp=6000, agent_bp=2500)
    ok(err(f)[0] == 'forbidden', 'a listener cannot offer a contract: forbidden', f)
    f = ag.request('contract.offer', singer=s2.account.name, singer_bp=6000, agent_bp=4500)
    ok(err(f)[0] == 'invalid_field', 'shares over 100%: invalid_field', f)
    d = ag.call('contract.offer', singer=s2.account.name, singer_bp=6000, agent_bp=2500)
    ok(d.get('singer') == sid and d.get('status') == 'offered' and d.get('agent') == agent.id,
       'the agent offers 60% / 25%', d)
    gift(fsig, sid, 'heart', 1, 'f2')  # still without a contract: floor(7*0.4321) = 3
    model.gift(fan.id, sid, 7)
    d = s2.call('contract.accept', agent=agent.name)
    ok(d.get('status') == 'active' and d.get('singer_bp') == 6000 and d.get('agent_bp') == 2500,
       'the singer accepts', d)
    f1 = gift(fsig, sid, 'car', 1, 'f3')
    f2 = gift(fsig, sid, 'heart', 3, 'f4')
    for total in (520, 21):
        model.gift(fan.id, sid, total, 6000, agent.id, 2500)
    e_s, e_a = earnings(s2), earnings(ag)
    ok(f1.get('type') == f2.get('type') == 'result' and
       e_s == 4 + 3 + 312 + 12 == model.earnings[sid] and
       e_a == 130 + 5 == model.earnings[agent.id],
       'under the contract: singer floor(520*0.6)+floor(21*0.6) = 324 more, agent 130+5 = 135',
       f'singer {e_s} (model {model.earnings[sid]}), agent {e_a}; {f1} {f2}')
    ks = s2.call('contract.get')['contracts']
    ok([(k.get('singer'), k.get('agent'), k.get('singer_bp'), k.get('agent_bp'), k.get('status'))
        for k in ks] == [(sid, agent.id, 6000, 2500, 'active')], 'contract.get shows it', ks)
    f = gift(fsig, other_singer, 'rose', 1, 'f-elsewhere')
    ok(err(f) == ('not_on_stage', 'to'),
       'a gift to a singer who is on stage in another room: not_on_stage', f)

    # A retry whose first answer was lost must get that answer even if the show changed since
    # (the singer stepped down and came back): the key names the gift, not the show.
    f1 = gift(fsig, sid, 'rose', 2, 'f5')
    model.gift(fan.id, sid, 2, 6000, agent.id, 2500)
    w0 = balance(fsig)
    s2.call('queue.advance')
    s2.call('queue.join')
    f2 = gift(fsig, sid, 'rose', 2, 'f5')
    d1, d2 = f1.get('data') or {}, f2.get('data') or {}
    ok(d1.get('transfer') and d2.get('transfer') == d1.get('transfer') and
       d2.get('replayed') is True and balance(fsig) == w0,
       'a gift retried after the singer stepped down and came back (a new show): the first '
       'answer, replayed', f'first {f1}\nretry {f2}')
    return agent, ag, admin, s2, fsig


def withdrawal_checks(tap, srv, model, s2, ag, admin, fsig):
    ok = tap.ok
    sid = s2.user['id']
    adm = Signaling(srv.ws_url, name='admin', account=admin)
    e0 = earnings(s2)
    d = s2.call('withdraw.request', amount=100, key='w1')
    wd1 = d.get('withdrawal')
    ok(wd1 == f'wd-{sid}-w1' and d.get('status') == 'pending' and earnings(s2) == e0 - 100,
       'withdraw.request 100: pending, held out of the earnings', d)
    f = s2.request('withdraw.request', amount=10 ** 6, key='w-big')
    f2 = fsig.request('withdraw.request', amount=1, key='w-l')
    f3 = s2.request('withdraw.request', amount=0, key='w-0')
    f4 = s2.request('withdraw.request', amount=-5, key='w-neg')
    ok(err(f)[0] == 'insufficient_funds' and err(f2)[0] == 'forbidden' and
       err(f3)[0] == 'invalid_field' and err(f4)[0] == 'invalid_field' and
       earnings(s2) == e0 - 100,
       'more than the earnings, a listener, zero and negative amounts: refused',
       f'{f} {f2} {f3} {f4}')
    lst = adm.call('withdraw.list')['withdrawals']
    mine = [x for x in lst if x.get('withdrawal') == wd1]
    ok(mine and mine[0].get('amount') == 100 and mine[0].get('user') == sid and
       mine[0].get('status') == 'pending', 'the admin sees it pending', lst)
    f = s2.request('withdraw.approve', withdrawal=wd1)
    ok(err(f)[0] == 'forbidden', 'a singer cannot approve: forbidden', f)
    d = adm.call('withdraw.approve', withdrawal=wd1)
    ok(d.get('status') == 'paid' and earnings(s2) == e0 - 100, 'the admin approves: paid', d)
    d = s2.call('withdraw.request', amount=50, key='w2')
    wd2 = d.get('withdrawal')
    held = earnings(s2)
    d = adm.call('withdraw.reject', withdrawal=wd2, reason='test')
    ok(held == e0 - 150 and d.get('status') == 'rejected' and earnings(s2) == e0 - 100,
       'a rejected withdrawal returns the coins to the earnings', f'{held} {d} {earnings(s2)}')
    f = adm.request('withdraw.approve', withdrawal=wd2)
    ok(err(f)[0] == 'conflict' and earnings(s2) == e0 - 100,
       'approving a rejected withdrawal: conflict, nothing moves', f)
    st = {x.get('withdrawal'): x.get('status') for x in s2.call('withdraw.list')['withdrawals']}
    ok(st == {wd1: 'paid', wd2: 'rejected'}, 'the singer\'s list shows paid and rejected', st)
    model.earnings[sid] -= 100
    a0 = earnings(ag)
    d = ag.call('withdraw.request', amount=35, key='a1')
    d2 = adm.call('withdraw.approve', withdrawal=d.get('withdrawal'))
    ok(d2.get('status') == 'paid' and earnings(ag) == a0 - 35, 'an agent withdraws 35', d2)
    model.earnings[ag.user['id']] -= 35
    f1 = adm.request('gift.send', gift='rose', count=1, to=sid, key='adm1')
    f2 = adm.request('vip.buy', tier='silver', months=1, key='adm2')
    ok(err(f1)[0] == 'forbidden' and err(f2)[0] == 'forbidden',
       'admins do not spend coins: forbidden', f'{f1} {f2}')
    return adm


def board_checks(tap, sig, model, singer_ids):
    """Overall and per-singer all-time boards equal the model's totals."""
    entries = sig.call('board.get', scope='overall', period='all')['entries']
    got = {e['user']: e['coins'] for e in entries}
    want = {u: c for u, c in model.gifted.items() if c}
    per = {}
    for s in singer_ids:
        per[s] = {e['user']: e['coins'] for e in
                  sig.call('board.get', scope='singer', period='all', singer=s)['entries']}
    want_per = {s: {u: c for u, c in model.gifted_to[s].items() if c} for s in singer_ids}
    return got == want and per == want_per, f'overall {got} want {want}; per singer {per} want ' \
        f'{want_per}'


def suite(tap, label, ledger=None, users=None):
    ok = tap.ok
    tap.diag(f'--- {label} ---')
    srv = tap.server = Server.start(config=CONFIG, ledger=ledger, users=users)
    model = Model()
    auth_checks(tap, srv)
    buyer, bsig = topup_checks(tap, srv, model)
    singer, obs, room = gift_checks(tap, srv, model, buyer, bsig)
    bad_input_checks(tap, srv, model, buyer, bsig, singer, obs, room)
    concurrency_checks(tap, srv, model, singer, obs, room)
    vip, vsig = vip_checks(tap, srv, model, singer, obs, room)
    agent, ag, admin, s2, fsig = contract_checks(tap, srv, model, singer.user['id'])
    withdrawal_checks(tap, srv, model, s2, ag, admin, fsig)
    singers = [singer.user['id'], s2.user['id']]
    good, diag = board_checks(tap, obs, model, singers)
    ok(good, 'overall and per-singer boards equal every gift sent', diag)
    n_gifts = srv.metrics().get('encore_gifts_total')
    ok(n_gifts == model.gifts, f'/metrics encore_gifts_total counts each of the {model.gifts} '
       'committed gifts once', f'{n_gifts} vs {model.gifts}')

    # A restart rebuilds VIP, boards and withdrawals from the ledger.
    balances = {u.user['id']: balance(s) for u, s in ((buyer, bsig), (vip, vsig))}
    code = srv.stop()
    ok(code == 0, f'encored exits 0 on SIGTERM ({label})', f'exit code {code}')
    srv.restart()
    b2 = Signaling(srv.ws_url, name='buyer', account=buyer)  # tokens outlive a restart
    v2 = Signaling(srv.ws_url, name='vip', account=srv.signin(vip.name))
    w = v2.call('wallet.get')
    ok(balance(b2) == balances[buyer.user['id']] == model.wallet[buyer.id] and
       w.get('balance') == model.wallet[vip.id] and (w.get('vip') or {}).get('tier') == 'silver',
       'after a restart: the same balances and the VIP status', f'{balances} {w}')
    good, diag = board_checks(tap, v2, model, singers)
    ok(good, 'after a restart the boards are rebuilt from the ledger exactly', diag)
    s2b = Signaling(srv.ws_url, name='bo', account=srv.signin(s2.account.name))
    st = {x.get('withdrawal'): x.get('status') for x in s2b.call('withdraw.list')['withdrawals']}
    ok(sorted(st.values()) == ['paid', 'rejected'] and
       earnings(s2b) == model.earnings[s2.user['id']],
       'after a restart the withdrawals and earnings are the same', f'{st} {earnings(s2b)}')
    code = srv.stop()
    ok(code == 0, 'encored exits 0 on SIGTERM after the restart', f'exit code {code}')
    rc, out = srv.audit()
    tap.diag('encore-audit: ' + ' | '.join(out.strip().splitlines()[:6]))
    ok(rc == 0, f'encore-audit passes on the {label} ledger', out)
    tap.server = None
    srv.cleanup()


def body(tap):
    suite(tap, 'SQLite')
    pg = os.environ.get('ENCORE_TEST_PG')
    if not pg:
        tap.skip('PostgreSQL: ENCORE_TEST_PG is not set (eval "$(scripts/pg start)")')
        return
    conninfo, drop = pg_database(pg, 'econ')
    try:
        suite(tap, 'PostgreSQL', ledger=f'postgresql:{conninfo}', users=f'postgresql:{conninfo}')
    finally:
        if tap.server is not None:
            tap.server.cleanup()
            tap.server = None
        drop()


if __name__ == '__main__':
    with_pg = bool(os.environ.get('ENCORE_TEST_PG'))
    run_test(CHECKS * 2 if with_pg else CHECKS + 1, body, limit=420 if with_pg else 240)
