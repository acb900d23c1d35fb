#!/usr/bin/python3
# Integration test: kill -9 during a storm of gifts (issue 3 "Crash"). 20 websocket clients (5
# senders, 4 connections each) send gifts with unique keys, several in flight each, resending a
# key when its answer is late (and some keys at once, as an impatient client would); encored is
# killed with SIGKILL mid-storm and restarted on the same data directory; the clients reconnect
# and resend every key that never got an answer, plus every key that did (to see it again). Then:
# every key has exactly one transfer, each acknowledged one unchanged; wallets, the singer's
# earnings, the rebuilt boards, /metrics and the ledger's row count match the keys exactly; and
# encore-audit passes. On SQLite, and on PostgreSQL too when ENCORE_TEST_PG is set.
import collections
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from encore_client import (GLib, Server, Signaling, payment_event, pg_database,  # noqa: E402
                           run_test, run_until)

SINGER_BP = 4321
SENDERS = 5
CONNS_PER_SENDER = 4
WINDOW = 6             # gifts in flight per connection
LATE_S = 1.0           # resend a key whose answer is this late
DUP_EVERY = 11         # every 11th key is sent twice at once
KILL_AFTER_ACKS = 1500 # kill once this many gifts are acknowledged (or after KILL_AFTER_S)
KILL_AFTER_S = 6.0
START_COINS = 100000
CONFIG = {
    'limits': {'rate': 100000, 'burst': 100000, 'conns_per_addr': 500},
    'economy': {'daily_cap': 0, 'singer_bp': SINGER_BP},
    'gift.rose': {'name': 'Rose', 'price': 1, 'animation': 'petals', 'tier': 1},
}
ROOM = 'storm'
CHECKS = 12


def count_of(key_seq):
    return 1 + key_seq % 5


class Client:
    """One connection's share of the storm: its keys, what was sent and every answer."""

    def __init__(self, idx, account, keys_state):
        self.idx = idx
        self.account = account
        self.sig = None
        self.seq = 0
        self.keys = keys_state     # shared: key -> state dict
        self.sent = {}             # request id (json) -> (key, phase), every request sent
        self.inflight = {}         # request id (json) -> (key, sent_at) awaiting an answer
        self.todo = collections.deque()  # keys to (re)send before new ones
        self.mine = []             # keys this client made
        self.next_req = 0

    def connect(self, url, singer_id):
        self.sig = Signaling(url, name=f'c{self.idx}', account=self.account, timeout=10)
        self.sig.call('room.join', room=ROOM, name=f'c{self.idx}')
        self.singer_id = singer_id
        self.inflight.clear()

    def new_key(self):
        key = f'c{self.idx}-{self.seq}'
        self.keys[key] = {'sender': self.account.id, 'count': count_of(self.seq), 'answers': [],
                          'phase': None}
        self.seq += 1
        self.mine.append(key)
        return key

    def send(self, key, phase):
        if self.sig.closed:
            return False
        self.next_req += 1
        rid = f'{self.idx}.{self.next_req}'
        st = self.keys[key]
        try:
            self.sig.send({'type': 'gift.send', 'id': rid, 'gift': 'rose', 'count': st['count'],
                           'to': self.singer_id, 'key': key})
        except ConnectionError:
            return False
        self.sent[json.dumps(rid)] = (key, phase)
        self.inflight[json.dumps(rid)] = (key, time.monotonic())
        st['sends'] = st.get('sends', 0) + 1
        return True

    def drain(self):
        """Takes the answers that arrived; returns how many gifts were acknowledged."""
        acked = 0
        for rk in list(self.sig.replies):
            frame = self.sig.replies.pop(rk)
            self.inflight.pop(rk, None)
            entry = self.sent.get(rk)
            if entry is None:
                continue
            key, phase = entry
            st = self.keys[key]
            if frame.get('type') == 'result':
                d = frame.get('data') or {}
                st['answers'].append((phase, d.get('transfer'), d.get('replayed')))
                acked += 1
            else:
                st['answers'].append((phase, 'error', frame.get('code')))
                if frame.get('code') == 'unavailable':
                    self.todo.append(key)  # the ledger could not commit: same key again
        del self.sig.frames[:]  # the room's gift and board events: not needed here
        return acked

    def resolved(self, key, phase):
        return any(a[0] == phase and a[1] != 'error' for a in self.keys[key]['answers'])

    def pump(self, phase, new_keys):
        """Resends late keys, then fills the window from todo, then (storm) with new keys."""
        now = time.monotonic()
        for rk, (key, at) in list(self.inflight.items()):
            if now - at > LATE_S:
                del self.inflight[rk]
                if not self.resolved(key, phase):
                    self.todo.append(key)
        while len(self.inflight) < WINDOW and self.todo:
            key = self.todo.popleft()
            if not self.resolved(key, phase) and not self.send(key, phase):
                self.todo.appendleft(key)
                return
        while new_keys and len(self.inflight) < WINDOW:
            key = self.new_key()
            if not self.send(key, phase):
                self.todo.append(key)
                return
            if self.seq % DUP_EVERY == 0:
                self.send(key, phase)


def run(tap, label, ledger=None, users=None):
    ok = tap.ok
    tap.diag(f'--- {label} ---')
    srv = tap.server = Server.start(config=CONFIG, ledger=ledger, users=users)
    singer_acct = srv.signup('star', role='singer')
    senders = [srv.signup(f's{i}') for i in range(SENDERS)]
    for s in senders:
        st, ans = srv.post_webhook(payment_event(f'evt_{s.id}_{os.urandom(3).hex()}', s.id,
                                                 START_COINS * 10))
        if st != 200:
            raise RuntimeError(f'top-up answered {st} {ans}')
    singer = Signaling(srv.ws_url, name='star', account=singer_acct)
    singer.call('room.join', room=ROOM, name='star')
    singer.call('queue.join')
    sid = singer_acct.id
    keys = {}
    clients = [Client(i, senders[i % SENDERS], keys) for i in range(SENDERS * CONNS_PER_SENDER)]
    for c in clients:
        c.connect(srv.ws_url, sid)

    # The storm, then SIGKILL in the middle of it.
    acked = 0
    t0 = time.monotonic()

    def storm_step():
        nonlocal acked
        for c in clients:
            acked += c.drain()
            c.pump('pre', True)
        return acked >= KILL_AFTER_ACKS or time.monotonic() - t0 > KILL_AFTER_S
    tick = GLib.timeout_add(2, lambda: True)
    run_until(storm_step, KILL_AFTER_S + 5)
    in_flight = sum(len(c.inflight) for c in clients)
    srv.kill()
    t_kill = time.monotonic() - t0
    run_until(lambda: all(c.sig.closed for c in clients), 5)
    for c in clients:
        c.drain()  # answers that were already on their way count as acknowledged
        for rk, (key, _) in c.inflight.items():
            c.todo.append(key)
        c.inflight.clear()
    pre_acked = {k for k, st in keys.items() if any(a[0] == 'pre' and a[1] != 'error'
                                                   for a in st['answers'])}
    unanswered = [k for k in keys if k not in pre_acked]
    tap.diag(f'killed after {t_kill:.2f} s: {len(keys)} keys made, {len(pre_acked)} acknowledged, '
             f'{len(unanswered)} without an answer, {in_flight} requests in flight')
    ok(len(pre_acked) >= 100 and unanswered and in_flight > 0,
       'SIGKILL hit the storm with gifts acknowledged and gifts in flight',
       f'{len(pre_acked)} acknowledged, {len(unanswered)} unanswered, {in_flight} in flight')

    srv.restart()
    singer = Signaling(srv.ws_url, name='star', account=singer_acct, timeout=10)
    singer.call('room.join', room=ROOM, name='star')
    pos = singer.call('queue.join')['position']
    for c in clients:
        c.connect(srv.ws_url, sid)
    ok(srv.alive() and pos == 0, 'encored restarts on the same data directory; the singer is back '
       'on stage and 20 clients reconnect with their old tokens')

    # Every key again: the unanswered ones to learn their fate, the acknowledged ones to see
    # that they are there, unchanged.
    for c in clients:
        c.todo = collections.deque(k for k in c.mine if k not in pre_acked)
        c.todo.extend(k for k in c.mine if k in pre_acked)

    def post_step():
        for c in clients:
            c.drain()
            c.pump('post', False)
        return all(not c.todo and not c.inflight for c in clients) and \
            all(c.resolved(k, 'post') for c in clients for k in c.mine)
    done = run_until(post_step, 90)
    GLib.source_remove(tick)
    missing = [k for k in keys if not any(a[0] == 'post' and a[1] != 'error'
                                          for a in keys[k]['answers'])]
    errors = collections.Counter(a[2] for st in keys.values() for a in st['answers']
                                 if a[1] == 'error')
    tap.diag(f'error answers (unavailable means: retry the same key): {dict(errors)}')
    errors.pop('unavailable', None)
    ok(done and not missing and not errors,
       f'after the restart every one of the {len(keys)} keys is answered with a transfer',
       f'{len(missing)} without an answer (e.g. {missing[:5]}); errors {dict(errors)}')

    # One transfer per key; the acknowledged ones unchanged; never two first-time answers.
    per_key = {k: {a[1] for a in st['answers'] if a[1] != 'error'} for k, st in keys.items()}
    multi = {k: v for k, v in per_key.items() if len(v) != 1}
    transfers = [next(iter(v)) for v in per_key.values() if len(v) == 1]
    fresh = {k: sum(1 for a in st['answers'] if a[1] != 'error' and a[2] is False)
             for k, st in keys.items()}
    ok(not multi and len(set(transfers)) == len(keys) and all(v <= 1 for v in fresh.values()),
       'each key has exactly one transfer id, distinct keys distinct transfers, and at most one '
       'answer that is not a replay',
       f'keys with several transfers {list(multi.items())[:5]}; distinct {len(set(transfers))} of '
       f'{len(keys)}; double fresh {[k for k, v in fresh.items() if v > 1][:5]}')
    changed = [k for k in pre_acked if any(a[0] == 'post' and a[2] is not True
                                           for a in keys[k]['answers'])]
    ok(not changed, f'the {len(pre_acked)} gifts acknowledged before the kill are found again '
       '(replayed, same transfer)', [(k, keys[k]['answers']) for k in changed[:5]])
    lost_answers = [k for k in unanswered if not any(a[2] is False for a in keys[k]['answers'])]
    tap.diag(f'{len(lost_answers)} of the {len(unanswered)} unanswered gifts had been committed '
             'before the kill (their answers were lost with the connection)')

    # Balances, earnings, boards and counters against the keys.
    spent = collections.Counter()
    earned = 0
    for k, st in keys.items():
        spent[st['sender']] += st['count']
        earned += st['count'] * SINGER_BP // 10000
    by_sender = {s.id: next(c for c in clients if c.account is s) for s in senders}
    wallets = {s.id: by_sender[s.id].sig.call('wallet.get')['balance'] for s in senders}
    want = {s.id: START_COINS - spent[s.id] for s in senders}
    ok(wallets == want, 'every sender\'s wallet went down by exactly the sum of its distinct gifts',
       f'wallets {wallets}\nwant    {want}')
    e = singer.call('earnings.get')['balance']
    ok(e == earned, f'the singer earned exactly sum(floor(count*{SINGER_BP}/10000)) = {earned}',
       f'earnings {e}')
    board = {x['user']: x['coins'] for x in
             singer.call('board.get', scope='overall', period='all')['entries']}
    sboard = {x['user']: x['coins'] for x in
              singer.call('board.get', scope='singer', period='all', singer=sid)['entries']}
    ok(board == dict(spent) == sboard,
       'the overall and singer boards (rebuilt from the ledger, then live) equal the gifts',
       f'overall {board}\nsinger  {sboard}\nwant    {dict(spent)}')
    post_fresh = sum(1 for st in keys.values()
                     if any(a[0] == 'post' and a[1] != 'error' and a[2] is False
                            for a in st['answers']))
    n = srv.metrics().get('encore_gifts_total')
    ok(n == post_fresh, f'/metrics counts the {post_fresh} gifts first committed after the '
       'restart, none of the replays', f'encore_gifts_total {n}')
    code = srv.stop()
    ok(code == 0, 'encored exits 0 on SIGTERM', f'exit code {code}')
    rc, out = srv.audit()
    tap.diag('encore-audit: ' + ' | '.join(out.strip().splitlines()[:4]))
    m = re.search(r'(\d+) transfers applied', out)
    ok(rc == 0, 'encore-audit passes', out)
    applied = int(m.group(1)) if m else None
    ok(applied == len(keys) + SENDERS,
       f'the ledger holds exactly {len(keys)} gifts + {SENDERS} top-ups', f'{applied} applied')
    tap.server = None
    srv.cleanup()


def body(tap):
    run(tap, 'SQLite')
    pg = os.environ.get('ENCORE_TEST_PG')
    if not pg:
        tap.skip('PostgreSQL: ENCORE_TEST_PG is not set (eval "$(scripts/pg start)")')
        return
    conninfo, drop = pg_database(pg, 'crash')
    try:
        run(tap, 'PostgreSQL', ledger=f'postgresql:{conninfo}', users=f'postgresql:{conninfo}')
    finally:
        if tap.server is not None:
            tap.server.cleanup()
            tap.server = None
        drop()


if __name__ == '__main__':
    with_pg = bool(os.environ.get('ENCORE_TEST_PG'))
    run_test(CHECKS * 2 if with_pg else CHECKS + 1, body, limit=300 if with_pg else 180)
