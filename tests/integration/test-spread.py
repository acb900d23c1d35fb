#!/usr/bin/python3
# Integration test: one room's listeners are spread over the media workers. With `--workers 2`,
# four listeners of one room all hear the singer while /metrics shows both workers sending, and
# each worker answers the NACKs of its own lossy listener; the listeners of the room's home worker
# leave and the other worker carries the room alone; a new listener goes to the emptier worker; a
# hand-over to the next singer reaches every listener on the same continuous stream. Starts its
# own encored (env ENCORED) on loopback.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from encore_client import (Gst, Listener, Publisher, RtpLog, Server, join_room,  # noqa: E402
                           run_test, run_until, sdp_attr, sleep, wait_state)

ROOM = 'spread-test'
WORKERS = ('0', '1')
RING_FULL = 'encore_media_dropped_total{reason="ring_full"}'


class LossyListener(Listener):
    """A listener that negotiates NACK and loses every 25th RTP packet after its first 50, before
    its jitter buffer (which then asks the server for it again). Its own RTP log still has every
    packet that arrived, so retransmissions show there as duplicates."""

    def __init__(self, name):
        super().__init__(name)
        self.transceiver.set_property('do-nack', True)
        self.seen = 0
        self.lost = 0

    def _on_deep_element(self, bin_, sub, element):
        super()._on_deep_element(bin_, sub, element)
        factory = element.get_factory()
        if factory is not None and factory.get_name() == 'rtpssrcdemux':
            element.get_static_pad('sink').add_probe(Gst.PadProbeType.BUFFER, self._lose)

    def _lose(self, pad, info):
        head = info.get_buffer().extract_dup(0, 2)
        if len(head) == 2 and not 64 <= (head[1] & 0x7F) <= 95:
            self.seen += 1
            if self.seen > 50 and self.seen % 25 == 0:
                self.lost += 1
                return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK


def worker_counter(metrics, name):
    """{worker: value} of encore_media_worker_<name>."""
    return {w: metrics.get(f'encore_media_worker_{name}{{worker="{w}"}}') for w in WORKERS}


def window(srv, seconds=2.0):
    """rtp_out sent by each worker during `seconds`."""
    before = worker_counter(srv.metrics(), 'rtp_out_total')
    sleep(seconds)
    after = worker_counter(srv.metrics(), 'rtp_out_total')
    return {w: after[w] - before[w] for w in WORKERS}


def body(tap):
    srv = tap.server = Server.start(extra_args=['--workers', '2'])
    m = srv.metrics()
    rtp0 = worker_counter(m, 'rtp_out_total')
    ring_full = m.get(RING_FULL)
    tap.ok(all(v == 0 for v in rtp0.values()) and ring_full == 0,
           '/metrics lists rtp_out for workers 0 and 1 and a ring_full drop counter',
           f'{rtp0} ring_full={ring_full}')

    a = join_room(srv.ws_url, ROOM, 'Ann', role='singer')
    a.call('queue.join')
    pub_a = Publisher(440, name='pubA')
    pub_a.connect_to(a)
    tap.ok(run_until(lambda: pub_a.connected(), 10), 'the singer on stage connects',
           pub_a.conn_state)

    # l3 (home worker) and l4 (the other) lose packets and ask for them again.
    sigs, lis, answers = [], [], []
    for i in range(4):
        s = join_room(srv.ws_url, ROOM, f'L{i + 1}')
        li = LossyListener(f'l{i + 1}') if i >= 2 else Listener(f'l{i + 1}')
        answers.append(li.connect_to(s))
        sigs.append(s)
        lis.append(li)
    for li in lis:
        tap.ok(run_until(lambda: li.hears(440), 10), f'listener {li.name} hears 440 Hz',
               li.describe())
    ssrcs = set()
    for ans in answers:
        ssrcs |= set(int(v.split()[0]) for v in sdp_attr(ans, 'ssrc') if v.split()[0].isdigit())
    seen = [li.rtp.ssrcs() for li in lis]
    tap.ok(len(ssrcs) == 1 and all(s == sorted(ssrcs) for s in seen),
           'every listener receives the one SSRC the answers announced', f'{ssrcs} {seen}')

    d = window(srv)
    total = sum(d.values())
    tap.ok(total > 0 and all(v >= 0.3 * total for v in d.values()),
           'both workers send the room to listeners (2 listeners each)', f'rtp_out deltas {d}')
    m = srv.metrics()
    rtcp = worker_counter(m, 'rtcp_out_total')
    tap.ok(all(v and v > 0 for v in rtcp.values()),
           'both workers send RTCP (sender reports to their own listeners)', f'rtcp_out {rtcp}')
    per_worker = worker_counter(m, 'rtp_out_total')
    tap.ok(sum(per_worker.values()) == m.get('encore_media_rtp_out_total'),
           'per-worker rtp_out sums to encore_media_rtp_out_total',
           f'{per_worker} total {m.get("encore_media_rtp_out_total")}')
    nacks = worker_counter(m, 'nack_in_total')
    resent = worker_counter(m, 'retransmits_total')
    tap.ok(all(nacks[w] and resent[w] for w in WORKERS) and
           sum(resent.values()) == m.get('encore_media_retransmits_total'),
           'each worker answers its own listeners\' NACKs from its cache',
           f'nack_in {nacks} retransmits {resent} lost {[li.lost for li in lis[2:]]}')

    # Placement is by fewest listeners, ties to the home worker: l1 and l3 live on the home
    # worker, l2 and l4 on the other. Without l1 and l3 one worker carries the room alone.
    for i in (0, 2):
        lis[i].stop()
        sigs[i].close()
    st = wait_state(sigs[1], lambda s: s.get('listeners') == 2)
    tap.ok(st is not None, 'room.state counts 2 listeners after two left', sigs[1].last_state())
    sleep(0.5)
    d = window(srv)
    idle = [w for w in WORKERS if d[w] == 0]
    tap.ok(len(idle) == 1 and sum(d.values()) > 0,
           'with the home worker\'s listeners gone, one worker sends nothing, the other all',
           f'rtp_out deltas {d}')
    tap.ok(lis[1].hears(440) and lis[3].hears(440), 'the remaining listeners still hear 440 Hz',
           f'{lis[1].describe()}\n{lis[3].describe()}')

    s5 = join_room(srv.ws_url, ROOM, 'L5')
    l5 = Listener('l5')
    l5.connect_to(s5)
    tap.ok(run_until(lambda: l5.hears(440), 10), 'a new listener hears 440 Hz', l5.describe())
    d = window(srv)
    tap.ok(all(v > 0 for v in d.values()), 'the new listener was placed on the idle worker',
           f'rtp_out deltas {d} idle {idle}')

    b = join_room(srv.ws_url, ROOM, 'Bo', role='singer')
    b.call('queue.join')
    pub_b = Publisher(660, name='pubB')
    pub_b.connect_to(b)
    run_until(lambda: pub_b.connected(), 10)
    stage = a.call('queue.advance')['stage']
    remaining = [lis[1], lis[3], l5]
    heard = run_until(lambda: all(li.hears(660) for li in remaining), 8)
    tap.ok(stage == b.you and heard, 'after queue.advance every listener hears 660 Hz',
           '\n'.join(li.describe() for li in remaining))
    sleep(1.0)
    bad = []
    for li in (lis[1], l5):  # the listeners that lost nothing
        c = RtpLog.continuity(li.rtp.snapshot())
        if (c['backsteps'] or c['duplicates'] or c['lost'] > 3 or c['ts_backsteps'] or
                c['max_ts_jump'] > 48000 or len(li.src_pads) != 1):
            bad.append(f'{li.name}: {c} pads {li.src_pads}')
    tap.ok(not bad, 'each listener\'s stream stayed continuous (one stream, at most 3 lost)',
           '\n'.join(bad))
    m = srv.metrics()
    tap.ok(m.get(RING_FULL) == 0, 'no packet was dropped for a full ring', m.get(RING_FULL))
    peers = [pub_a, pub_b] + lis + [l5]
    tap.ok(not any(p.errors for p in peers), 'no pipeline errors',
           [p.errors for p in peers])

    for p in peers:
        p.stop()
    for s in [a, b, s5, sigs[1], sigs[3]]:
        s.close()
    code = srv.stop()
    tap.ok(code == 0, 'encored exits 0 on SIGTERM', f'exit code {code}')


if __name__ == '__main__':
    run_test(21, body, limit=90)
