#!/usr/bin/python3
# Encore integration-test client: a native (non-browser) WebRTC client built on GStreamer webrtcbin,
# a websocket protocol client (libsoup 3) and the server start/stop helper. Everything runs on the
# default GLib main context of the calling thread; GStreamer streaming threads only record data under
# a lock or hand work to the main loop. Never sends traffic outside 127.0.0.0/8.
"""Reusable pieces for tests/integration/test-*.py.

Typical use:

    enter_loopback_netns()                       # re-exec in a loopback-only network namespace
    srv = Server.start()                          # encored on free ports, waits for /healthz
    sig = Signaling(srv.ws_url, role='singer')    # signs up, opens encore.v1, sends auth first
    sig.call('room.join', room='r', name='Ann')   # returns the result's data or raises ProtocolError
    pub = Publisher(440)                          # webrtcbin sending a 440 Hz sine as stereo Opus
    pub.connect_to(sig)                           # offer -> publish -> answer, trickle both ways
    lis = Listener(); lis.connect_to(sig2)        # offer -> subscribe; measures what it hears
    run_until(lambda: lis.hears(440), 10)

Money: `srv.signup()`, `srv.sandbox_topup(token, amount)`, `srv.post_webhook(body)` (signed with
the `testpay` provider's secret that Server writes), `srv.add_user(hint, role)` (encore-users),
`srv.audit()` (encore-audit), `make_token()` for forged tokens.

Run `python3 encore_client.py listen --url ws://127.0.0.1:PORT/ws --room r` for a standalone listener
(used by the tests as a process they can SIGKILL).
"""

import base64
import collections
import hashlib
import hmac
import itertools
import json
import math
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstSdp', '1.0')
gi.require_version('GstWebRTC', '1.0')
gi.require_version('Soup', '3.0')
from gi.repository import Gio, GLib, Gst, GstSdp, GstWebRTC, Soup  # noqa: E402

try:
    gi.require_version('Nice', '0.1')
    from gi.repository import Nice  # noqa: F401 - gives the NiceAgent methods (restart_stream)
except (ValueError, ImportError):  # without it an ICE restart only changes the credentials
    Nice = None

try:
    import numpy
except ImportError:  # the pure-Python Goertzel fallback below is used instead
    numpy = None

Gst.init(None)

RATE = 48000
HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------------------------
# Main loop helpers
# ---------------------------------------------------------------------------------------------

_tick_source = None


def run_until(pred, timeout):
    """Iterates the default main context until pred() is truthy or timeout seconds pass.

    Returns the last value of pred(). A 20 ms tick keeps the loop from sleeping past the deadline.
    """
    global _tick_source
    if _tick_source is None:
        _tick_source = GLib.timeout_add(20, lambda: True)
    ctx = GLib.MainContext.default()
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        ctx.iteration(True)


def sleep(seconds):
    """Runs the main loop for seconds (events keep flowing)."""
    run_until(lambda: False, seconds)


def _on_main(fn, *args):
    """Calls fn(*args) once on the default main context (from any thread)."""
    def call():
        fn(*args)
        return False
    GLib.idle_add(call)


def _wait_promise(promise, what):
    """Waits for a Gst.Promise answered by webrtcbin's own thread; returns its reply structure."""
    if promise.wait() != Gst.PromiseResult.REPLIED:
        raise RuntimeError(f'{what}: promise not answered')
    reply = promise.get_reply()
    if reply is not None and reply.has_field('error'):
        raise RuntimeError(f'{what}: {reply.get_value("error")}')
    return reply


# ---------------------------------------------------------------------------------------------
# Network namespace, free ports, HTTP
# ---------------------------------------------------------------------------------------------

def enter_loopback_netns():
    """Re-executes the calling script in a network namespace that only has loopback.

    Done when running as root with `unshare` and `ip` available, unless ENCORE_NO_NETNS=1. This is
    the simplest guarantee that no test traffic leaves 127.0.0.0/8 (RECIPES.md). Returns normally
    when the script already runs in such a namespace or when it cannot be arranged.
    """
    if os.environ.get('ENCORE_NETNS') or os.environ.get('ENCORE_NO_NETNS') == '1':
        return
    if os.geteuid() != 0 or not shutil.which('unshare') or not shutil.which('ip'):
        return
    if subprocess.run(['unshare', '-n', 'true'], stderr=subprocess.DEVNULL).returncode != 0:
        return
    os.environ['ENCORE_NETNS'] = '1'
    sys.stdout.flush()
    os.execvp('unshare', ['unshare', '-n', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh',
                          sys.executable, os.path.abspath(sys.argv[0])] + sys.argv[1:])


def free_tcp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


_no_proxy_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(port, path, timeout=3.0):
    """GET http://127.0.0.1:port/path; returns (status, body bytes); status 0 if unreachable."""
    try:
        with _no_proxy_opener.open(f'http://127.0.0.1:{port}{path}', timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, urllib.error.URLError):
        return 0, b''


def http_post(port, path, body=b'', headers=None, timeout=10.0, method='POST'):
    """POST to http://127.0.0.1:port/path; returns (status, parsed JSON or {'_raw': bytes}).

    body: bytes (sent exactly as given: webhook signatures cover the raw bytes) or any JSON value
    (serialized compactly). Status 0 when the server is unreachable.
    """
    if not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body, separators=(',', ':')).encode()
    hdrs = {'Content-Type': 'application/json'}
    hdrs.update(headers or {})
    req = urllib.request.Request(f'http://127.0.0.1:{port}{path}', data=bytes(body), headers=hdrs,
                                 method=method)
    try:
        with _no_proxy_opener.open(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (OSError, urllib.error.URLError):
        return 0, {}
    try:
        data = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError):
        data = {'_raw': raw}
    return status, data


def parse_metrics(text):
    """Parses Prometheus text exposition into {'name{labels}': value} (timestamps ignored)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        if '}' in line:
            cut = line.rindex('}') + 1
            key, rest = line[:cut], line[cut:].split()
        else:
            key, *rest = line.split()
        try:
            out[key] = float(rest[0])
        except (IndexError, ValueError):
            pass
    return out


def metric_sum(metrics, pred):
    """Sum of the samples whose 'name{labels}' key satisfies pred."""
    return sum(v for k, v in metrics.items() if pred(k))


# ---------------------------------------------------------------------------------------------
# Accounts, tokens and webhook signatures (docs/accounts.md)
# ---------------------------------------------------------------------------------------------

TEST_PASSWORD = 'correct horse battery staple'
_name_counter = itertools.count(1)
_run_tag = '%04x' % random.getrandbits(16)


def unique_name(hint='u'):
    """A fresh account name: 3-32 of [A-Za-z0-9_.-], unique within this process and very likely
    across runs (a random tag per process)."""
    base = ''.join(c for c in str(hint) if c.isascii() and (c.isalnum() or c in '_.-'))[:16]
    return f'{base or "u"}-{_run_tag}{next(_name_counter)}'[:32]


class Account:
    """A signed-up account: .name, .password, .token, .expires, .user ({id, name, role, adult})."""

    def __init__(self, name, password, token, expires, user):
        self.name = name
        self.password = password
        self.token = token
        self.expires = expires
        self.user = user

    @property
    def id(self):
        return self.user['id']

    def __repr__(self):
        return f'Account({self.name!r}, id={self.user.get("id")}, role={self.user.get("role")})'


def signup(port, hint='u', role='listener', birth_year=1990, password=TEST_PASSWORD,
           timeout=30.0):
    """POST /api/signup for a fresh account; returns an Account. Waits out 429 (the server allows
    20 attempts at once per address, then one a second). Raises RuntimeError on other refusals.
    """
    name = unique_name(hint)
    body = {'name': name, 'password': password, 'birth_year': birth_year}
    if role is not None:
        body['role'] = role
    deadline = time.monotonic() + timeout
    while True:
        status, data = http_post(port, '/api/signup', body)
        if status == 429 and time.monotonic() < deadline:
            sleep(1.1)
            continue
        if status != 201 or not isinstance(data.get('token'), str):
            raise RuntimeError(f'sign-up of {name} ({role}, {birth_year}) answered {status} {data}')
        return Account(name, password, data['token'], data.get('expires'), data.get('user') or {})


def signin(port, name, password=TEST_PASSWORD, timeout=30.0):
    """POST /api/signin; returns an Account (raises RuntimeError when refused)."""
    deadline = time.monotonic() + timeout
    while True:
        status, data = http_post(port, '/api/signin', {'name': name, 'password': password})
        if status == 429 and time.monotonic() < deadline:
            sleep(1.1)
            continue
        if status != 200 or not isinstance(data.get('token'), str):
            raise RuntimeError(f'sign-in of {name} answered {status} {data}')
        return Account(name, password, data['token'], data.get('expires'), data.get('user') or {})


def read_secret_file(path):
    """[(kid, key bytes)] of a "<kid> <hex>" secret file (the first line is the current key)."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            kid, hexkey = line.split(' ', 1)
            out.append((kid, bytes.fromhex(hexkey.strip())))
    return out


def write_secret_file(path, kid='k1', key=None):
    """Writes a fresh "<kid> <hex>" secret file (mode 0600); returns the key bytes."""
    key = key if key is not None else os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(f'{kid} {key.hex()}\n')
    return key


def webhook_signature(secret, body, t=None):
    """The Encore-Signature header value for body (bytes) signed with secret (bytes) at time t
    (default now): "t=<t>,v1=<hex HMAC-SHA256(secret, t + '.' + body)>"."""
    t = int(time.time()) if t is None else int(t)
    mac = hmac.new(secret, f'{t}.'.encode() + body, hashlib.sha256).hexdigest()
    return f't={t},v1={mac}'


def payment_event(event_id, user_id, amount, currency='CNY', type_='payment.succeeded'):
    """A provider event body (bytes, compact JSON, the members of docs/accounts.md)."""
    return json.dumps({'id': event_id, 'type': type_, 'user_id': user_id, 'amount': amount,
                       'currency': currency}, separators=(',', ':')).encode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def make_token(key, kid, sub, role='listener', iat=None, nbf=None, exp=None, jti=None,
               alg='HS256', header=None, ttl=900):
    """An access token (compact JWS) with the given claims, signed with key (HMAC-SHA256) unless
    alg is not HS256 (then the signature segment is empty). For forging tests."""
    now = int(time.time())
    iat = now if iat is None else iat
    nbf = iat if nbf is None else nbf
    exp = iat + ttl if exp is None else exp
    hdr = header if header is not None else {'alg': alg, 'typ': 'JWT', 'kid': kid}
    payload = {'sub': str(sub), 'role': role, 'iat': iat, 'nbf': nbf, 'exp': exp,
               'jti': jti or b64url(os.urandom(16))}
    signing = (b64url(json.dumps(hdr, separators=(',', ':')).encode()) + '.' +
               b64url(json.dumps(payload, separators=(',', ':')).encode()))
    if alg != 'HS256':
        return signing + '.'
    return signing + '.' + b64url(hmac.new(key, signing.encode(), hashlib.sha256).digest())


# ---------------------------------------------------------------------------------------------
# The server under test
# ---------------------------------------------------------------------------------------------

def _default_binary():
    if os.environ.get('ENCORED'):
        return os.environ['ENCORED']
    for d in (os.environ.get('top_builddir'), os.getcwd(), '/tmp/build-lead', '/work/main/build'):
        if d and os.access(os.path.join(d, 'encored'), os.X_OK):
            return os.path.join(d, 'encored')
    return os.path.join(os.environ.get('top_builddir', '.'), 'encored')


def _default_web_root():
    top = os.environ.get('top_srcdir') or os.path.normpath(os.path.join(HERE, '..', '..'))
    return os.path.join(top, 'web')


def _tool(binary, name):
    """A program built next to encored (encore-audit, encore-users), or $ENCORE_<NAME>."""
    env = os.environ.get('ENCORE_' + name.replace('encore-', '').upper())
    return env or os.path.join(os.path.dirname(os.path.abspath(binary)), name)


def pg_database(conninfo, tag='it'):
    """Creates a fresh database on the PostgreSQL server of conninfo (libpq key=value, e.g.
    $ENCORE_TEST_PG) and returns (conninfo of the new database, drop function). Needs psql."""
    name = f'encore_{tag}_{os.getpid()}_{random.getrandbits(24):06x}'
    subprocess.run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', conninfo, '-c',
                    f'CREATE DATABASE {name}'], check=True, stdout=subprocess.DEVNULL)
    parts = [p for p in conninfo.split() if not p.startswith('dbname=')]
    new = ' '.join(parts + [f'dbname={name}'])

    def drop():
        subprocess.run(['psql', '-X', '-q', conninfo, '-c', f'DROP DATABASE IF EXISTS {name}'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return new, drop


class Server:
    """One encored process on free ports with its own data directory, config file and log.

    The command line is `ENCORED --config C --listen 127.0.0.1:P --data-dir D --media-ip 127.0.0.1
    --rtp-ports LO-HI --web-root W` plus ENCORED_ARGS (split on spaces) and extra_args. The config
    file C sets cheap Argon2 parameters (tests only), a second payment provider `testpay` whose
    secret file the test holds (.provider_secret), and whatever `config` ({group: {key: value}})
    adds or overrides; `ledger`/`users` choose the stores (default SQLite files in D).
    """

    def __init__(self, binary=None, extra_args=(), rtp_ports=None, config=None, ledger=None,
                 users=None):
        self.binary = binary or _default_binary()
        self.tmp = tempfile.mkdtemp(prefix='encore-it-')
        self.data_dir = os.path.join(self.tmp, 'data')
        os.mkdir(self.data_dir)
        self.log_path = os.path.join(self.tmp, 'encored.log')
        self.port = free_tcp_port()
        if rtp_ports is None:
            lo = random.randrange(20000, 59000, 2)
            rtp_ports = (lo, lo + 199)
        self.rtp_ports = rtp_ports
        self.ledger_store = ledger or f'sqlite:{self.data_dir}/ledger.db'
        self.users_store = users or f'sqlite:{self.data_dir}/users.db'
        self.provider_secret_path = os.path.join(self.tmp, 'testpay.key')
        self.provider_secret = write_secret_file(self.provider_secret_path, 'tp1')
        cfg = {
            'accounts': {'password_memory': 256, 'password_passes': 1,
                         'users': self.users_store},
            'ledger': {'backend': self.ledger_store},
            'payments': {'sandbox': True},
            'provider.testpay': {'secret_file': self.provider_secret_path},
        }
        for group, keys in (config or {}).items():
            cfg.setdefault(group, {}).update(keys)
        self.config = cfg
        self.config_path = os.path.join(self.tmp, 'encored.ini')
        with open(self.config_path, 'w') as f:
            for group, keys in cfg.items():
                f.write(f'[{group}]\n')
                for k, v in keys.items():
                    if isinstance(v, bool):
                        v = 'true' if v else 'false'
                    f.write(f'{k} = {v}\n')
                f.write('\n')
        self.args = [self.binary, '--config', self.config_path, '--listen',
                     f'127.0.0.1:{self.port}', '--data-dir', self.data_dir,
                     '--media-ip', '127.0.0.1', '--rtp-ports', f'{rtp_ports[0]}-{rtp_ports[1]}',
                     '--web-root', _default_web_root()]
        self.args += os.environ.get('ENCORED_ARGS', '').split() + list(extra_args)
        self.proc = None
        self.exit_code = None
        self._log = None

    @classmethod
    def start(cls, timeout=15.0, **kw):
        srv = cls(**kw)
        srv._spawn(timeout)
        return srv

    def _spawn(self, timeout):
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError(f'server binary {self.binary} not found (set ENCORED)')
        self._log = open(self.log_path, 'ab')
        env = dict(os.environ)
        env.setdefault('G_MESSAGES_DEBUG', os.environ.get('ENCORED_DEBUG', ''))
        self.exit_code = None
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'encored exited with {self.proc.returncode} during start-up; '
                                   f'log:\n{self.log_tail()}')
            status, _ = http_get(self.port, '/healthz', timeout=1.0)
            if status == 200:
                return
            time.sleep(0.1)
        raise TimeoutError(f'encored: /healthz not 200 within {timeout:.0f} s; log:\n'
                           f'{self.log_tail()}')

    def restart(self, timeout=15.0):
        """Starts encored again with the same arguments, port and data directory (after stop() or
        kill()); its log goes on in the same file."""
        if self.alive():
            raise RuntimeError('restart: encored is still running')
        if self._log is not None and not self._log.closed:
            self._log.close()
        with open(self.log_path, 'ab') as f:
            f.write(b'\n==== restart ====\n')
        self._spawn(timeout)

    @property
    def ws_url(self):
        return f'ws://127.0.0.1:{self.port}/ws'

    @property
    def origin(self):
        """The origin a browser that loaded the pages from this server sends."""
        return f'http://127.0.0.1:{self.port}'

    def get(self, path):
        return http_get(self.port, path)

    def http_post(self, path, body=b'', headers=None, timeout=10.0):
        """(status, JSON answer) of a POST to this server (body: bytes as is, or a JSON value)."""
        return http_post(self.port, path, body, headers, timeout)

    def signup(self, hint='u', role='listener', birth_year=1990, **kw):
        return signup(self.port, hint, role, birth_year, **kw)

    def signin(self, name, password=TEST_PASSWORD):
        return signin(self.port, name, password)

    def token_keys(self):
        """[(kid, key)] of the server's token signing keys (<data-dir>/token.key)."""
        return read_secret_file(os.path.join(self.data_dir, 'token.key'))

    def sandbox_secret(self):
        return read_secret_file(os.path.join(self.data_dir, 'sandbox.key'))[0][1]

    def post_webhook(self, body, secret=None, t=None, provider='testpay', signature=None):
        """Signs body (bytes) with the provider's secret (default: testpay's) and posts it to
        /api/webhooks/<provider>; returns (status, JSON answer)."""
        if signature is None:
            signature = webhook_signature(secret if secret is not None else self.provider_secret,
                                          body, t)
        headers = {'Encore-Signature': signature} if signature else {}
        return self.http_post(f'/api/webhooks/{provider}', body, headers)

    def sandbox_topup(self, token, amount, currency='CNY'):
        """POST /api/sandbox/checkout with a Bearer token; returns (status, JSON answer)."""
        return self.http_post('/api/sandbox/checkout', {'amount': amount, 'currency': currency},
                              {'Authorization': f'Bearer {token}'})

    def audit(self, timeout=60):
        """Runs encore-audit on the ledger; returns (exit code, output)."""
        p = subprocess.run([_tool(self.binary, 'encore-audit'), '--store', self.ledger_store],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode, p.stdout.decode('utf-8', 'replace')

    def users_cli(self, *args, stdin=None, timeout=60):
        """Runs encore-users --store <users store> ARGS; returns (exit code, output)."""
        p = subprocess.run([_tool(self.binary, 'encore-users'), '--store', self.users_store] +
                           list(args), input=(stdin or '').encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode, p.stdout.decode('utf-8', 'replace')

    def add_user(self, hint, role, birth_year=1990, password=TEST_PASSWORD):
        """Makes an account with any role through encore-users and signs it in; an Account."""
        name = unique_name(hint)
        rc, out = self.users_cli('add', name, '--role', role, '--birth-year', str(birth_year),
                                 stdin=password + '\n')
        if rc != 0:
            raise RuntimeError(f'encore-users add {name} --role {role} exited {rc}: {out}')
        return self.signin(name, password)

    def metrics(self):
        status, body = http_get(self.port, '/metrics')
        if status != 200:
            raise RuntimeError(f'/metrics answered {status}')
        return parse_metrics(body.decode('utf-8', 'replace'))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL (no chance to flush or clean up); returns once the process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.exit_code = self.proc.returncode if self.proc else None
        if self._log is not None:
            self._log.close()
        return self.exit_code

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout; returns the exit code (negative for a signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.exit_code = self.proc.returncode
        if self._log is not None:
            self._log.close()
        return self.exit_code

    def log_tail(self, lines=60):
        try:
            with open(self.log_path, 'rb') as f:
                data = f.read()
        except OSError:
            return ''
        return '\n'.join(data.decode('utf-8', 'replace').splitlines()[-lines:])

    def cleanup(self):
        if self.alive():
            self.stop()
        if os.environ.get('ENCORE_KEEP_TMP') != '1':
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Websocket protocol client
# ---------------------------------------------------------------------------------------------

class ProtocolError(Exception):
    """An `error` answer: .code, .frame."""

    def __init__(self, frame):
        self.frame = frame
        self.code = frame.get('code')
        super().__init__(f"{frame.get('code')}: {frame.get('message')}")


class Signaling:
    """A websocket to encored (subprotocol encore.v1) on the default main context.

    Every received frame is appended to .frames (parsed JSON, or {'_raw': text} when the server sent
    something that is not JSON). Answers (frames with an `id`) go to .replies[id]; all other frames are
    events, passed to every callable in .listeners and kept in .frames.

    Authentication (docs/protocol.md "auth") comes first: unless auth=False, the connection signs
    up a fresh account over HTTP (role `role`, born in `birth_year`; or uses `account`, an
    Account, e.g. to open several connections of one user) and sends `auth` with its token before
    anything else. .account and .user (the auth answer's user) describe who it is. `origin` is
    sent as the handshake's Origin header (none by default, like a native client).
    """

    def __init__(self, url, timeout=5.0, protocols=('encore.v1',), name='ws', role='listener',
                 birth_year=1990, account=None, auth=True, origin=None):
        self.name = name
        self.url = url
        self.frames = []
        self.replies = {}
        self.listeners = []
        self.conn = None
        self.closed = False
        self.close_code = None
        self.connect_error = None
        self.http_status = None
        self.account = None
        self.user = None
        self._next_id = 1
        if auth and account is None:
            account = signup(urllib.parse.urlsplit(url).port, name, role, birth_year)
        self.session = Soup.Session(proxy_resolver=Gio.SimpleProxyResolver.new(None, None),
                                    timeout=int(timeout) + 1)
        self._msg = Soup.Message.new('GET', url)
        self.session.websocket_connect_async(self._msg, origin, list(protocols),
                                             GLib.PRIORITY_DEFAULT, None, self._on_connected)
        if not run_until(lambda: self.conn or self.connect_error, timeout):
            raise TimeoutError(f'{url}: websocket not connected within {timeout} s')
        if self.connect_error:
            raise ConnectionError(f'{url}: {self.connect_error} (HTTP {self.http_status})')
        if auth:
            self.authenticate(account, timeout)

    def authenticate(self, account, timeout=5.0):
        """Sends `auth` with account.token; sets .account and .user, or raises ProtocolError."""
        self.user = self.call('auth', timeout, token=account.token)['user']
        self.account = account
        return self.user

    def _on_connected(self, session, result):
        try:
            conn = session.websocket_connect_finish(result)
        except GLib.Error as e:
            self.http_status = int(self._msg.get_status())
            self.connect_error = e.message
            return
        conn.set_max_incoming_payload_size(1 << 20)
        conn.set_keepalive_interval(0)
        conn.connect('message', self._on_message)
        conn.connect('closed', self._on_closed)
        self.conn = conn

    @property
    def protocol(self):
        return self.conn.get_protocol() if self.conn else None

    def _on_message(self, conn, kind, data):
        raw = data.get_data() if data is not None else b''
        try:
            frame = json.loads(raw.decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            frame = {'_raw': raw}
        if not isinstance(frame, dict):
            frame = {'_raw': raw}
        if frame.get('type') == 'gifts' and isinstance(frame.get('items'), list):
            # A busy room's gifts arrive batched: recorded as one `gift` event each.
            for item in frame['items']:
                self._on_frame(dict(item, type='gift'))
            return
        self._on_frame(frame)

    def _on_frame(self, frame):
        self.frames.append(frame)
        if 'id' in frame and frame.get('type') in ('result', 'error'):
            self.replies[self._key(frame['id'])] = frame
        if 'id' not in frame:
            for fn in list(self.listeners):
                fn(frame)

    def _on_closed(self, conn):
        self.closed = True
        self.close_code = conn.get_close_code()

    @staticmethod
    def _key(value):
        return json.dumps(value)

    # Sending -----------------------------------------------------------------------------------

    def send(self, obj):
        """Sends one JSON object as a text frame (no id added)."""
        self.send_text(json.dumps(obj))

    def send_text(self, text):
        if self.closed or self.conn is None:
            raise ConnectionError(f'{self.name}: websocket closed')
        self.conn.send_text(text)

    def send_raw_text(self, data):
        """Sends bytes as a text frame as they are (even if not UTF-8)."""
        if self.closed or self.conn is None:
            raise ConnectionError(f'{self.name}: websocket closed')
        self.conn.send_message(Soup.WebsocketDataType.TEXT, GLib.Bytes.new(data))

    def next_id(self):
        i = self._next_id
        self._next_id += 1
        return i

    def request(self, type_, timeout=5.0, id_=None, **fields):
        """Sends {type, id, **fields} and returns the answer frame (result or error)."""
        if id_ is None:
            id_ = self.next_id()
        msg = {'type': type_, 'id': id_}
        msg.update(fields)
        self.send(msg)
        return self.wait_reply(id_, timeout, what=type_)

    def wait_reply(self, id_, timeout=5.0, what='request'):
        key = self._key(id_)
        if not run_until(lambda: key in self.replies or self.closed, timeout):
            raise TimeoutError(f'{self.name}: no answer to {what} (id {id_}) within {timeout} s')
        if key not in self.replies:
            raise ConnectionError(f'{self.name}: closed (code {self.close_code}) before answering '
                                  f'{what}')
        return self.replies.pop(key)

    def call(self, type_, timeout=5.0, **fields):
        """Like request() but returns the result's `data`, raising ProtocolError on `error`."""
        frame = self.request(type_, timeout, **fields)
        if frame.get('type') != 'result':
            raise ProtocolError(frame)
        return frame.get('data')

    def ping(self, timeout=3.0):
        """True when the server answers a ping with a result."""
        try:
            return self.request('ping', timeout).get('type') == 'result'
        except (TimeoutError, ConnectionError):
            return False

    # Events ------------------------------------------------------------------------------------

    def mark(self):
        """A position in .frames for wait_frame(since=...)."""
        return len(self.frames)

    def wait_frame(self, pred, timeout=5.0, since=0):
        """Waits for a received frame (from index since on) matching pred; returns it or None."""
        def find():
            for f in self.frames[since:]:
                if pred(f):
                    return f
            return None
        return run_until(find, timeout)

    def wait_event(self, type_, timeout=5.0, since=0, **match):
        return self.wait_frame(lambda f: 'id' not in f and f.get('type') == type_ and
                               all(f.get(k) == v for k, v in match.items()), timeout, since)

    def last_state(self):
        for f in reversed(self.frames):
            if f.get('type') == 'room.state':
                return f
        return None

    # Closing -----------------------------------------------------------------------------------

    def close(self, code=1000, timeout=3.0):
        if self.conn is not None and not self.closed:
            self.conn.close(code, None)
            run_until(lambda: self.closed, timeout)

    def abort(self):
        """Drops the TCP connection without a websocket close handshake."""
        if self.conn is not None and not self.closed:
            stream = self.conn.get_io_stream()
            try:
                stream.close(None)
            except GLib.Error:
                pass


class RawWebSocket:
    """A blocking, byte-exact websocket client for what libsoup cannot do deterministically.

    (libsoup drops what it has received when the server closes while frames are still queued for
    writing, so a flood test could not see the close code.) send_frames() writes many frames in one
    go; read_all() reads until the server closes the TCP connection and returns the frames.
    """

    def __init__(self, port, protocol='encore.v1', timeout=5.0, origin=None):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = f'Origin: {origin}\r\n' if origin is not None else ''
        self.sock.sendall((f'GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n'
                           f'Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n'
                           f'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n'
                           f'{extra}\r\n').encode())
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError('websocket handshake: connection closed')
            data += chunk
        head, _, self._buf = data.partition(b'\r\n\r\n')
        self.status = int(head.split(b' ', 2)[1])
        if self.status != 101:
            err = ConnectionError(f'websocket handshake answered {head[:80]!r}')
            err.status = self.status
            self.sock.close()
            raise err

    @staticmethod
    def frame(payload, opcode=1):
        """One masked client frame."""
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack('!BB', 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack('!BBH', 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack('!BBQ', 0x80 | opcode, 0x80 | 127, n)
        if numpy is not None:
            m = numpy.frombuffer((mask * (n // 4 + 1))[:n], dtype=numpy.uint8)
            body = (numpy.frombuffer(payload, dtype=numpy.uint8) ^ m).tobytes()
        else:
            body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        return head + mask + body

    def send_frames(self, payloads):
        self.sock.sendall(b''.join(self.frame(p) for p in payloads))

    def read_all(self, timeout=5.0):
        """Reads until EOF/reset/timeout; returns (frames as (opcode, payload), how it ended)."""
        self.sock.settimeout(timeout)
        buf, end = self._buf, 'eof'
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except socket.timeout:
            end = 'timeout'
        except OSError as e:
            end = f'error {e.errno}'
        frames, i = [], 0
        while i + 2 <= len(buf):
            op, n, j = buf[i] & 0x0F, buf[i + 1] & 0x7F, i + 2
            if n == 126:
                n, j = struct.unpack('!H', buf[j:j + 2])[0], j + 2
            elif n == 127:
                n, j = struct.unpack('!Q', buf[j:j + 8])[0], j + 8
            if j + n > len(buf):
                break
            frames.append((op, buf[j:j + n]))
            i = j + n
        return frames, end

    def close(self):
        self.sock.close()


def join_room(url, room, name, role='listener', **kw):
    """A new websocket (a fresh account with `role`, see Signaling) that has joined room as name;
    .you holds the member id."""
    sig = Signaling(url, name=name, role=role, **kw)
    sig.you = sig.call('room.join', room=room, name=name)['you']
    return sig


def wait_state(sig, pred, timeout=5.0):
    """Waits until the latest room.state received on sig satisfies pred; returns it or None."""
    def check():
        st = sig.last_state()
        return st if st is not None and pred(st) else None
    return run_until(check, timeout)


# ---------------------------------------------------------------------------------------------
# Audio analysis
# ---------------------------------------------------------------------------------------------

def _goertzel_power(samples, freq, rate=RATE):
    w = 2.0 * math.pi * freq / rate
    coeff = 2.0 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + coeff * s1 - s2
        s2 = s1
        s1 = s0
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def dominant_frequency(samples, rate=RATE):
    """Returns (frequency Hz, purity 0..1, rms) of a mono float sequence, or None if too short.

    purity is the share of the signal's energy within +-15 Hz of the peak (a clean sine: > 0.9).
    Uses numpy's FFT when available, else a Goertzel scan (coarse 10 Hz, then 1 Hz) over 50-4000 Hz.
    """
    n = len(samples)
    if n < rate // 20:
        return None
    if numpy is not None:
        x = numpy.asarray(samples, dtype=numpy.float64)
        x = x - x.mean()
        rms = float(numpy.sqrt(numpy.mean(x * x)))
        spec = numpy.abs(numpy.fft.rfft(x * numpy.hanning(n))) ** 2
        spec[0] = 0.0
        k = int(numpy.argmax(spec))
        delta = 0.0
        if 0 < k < len(spec) - 1:
            a, b, c = (math.log(spec[k - 1] + 1e-30), math.log(spec[k] + 1e-30),
                       math.log(spec[k + 1] + 1e-30))
            denom = a - 2 * b + c
            if denom != 0:
                delta = 0.5 * (a - c) / denom
        freq = (k + delta) * rate / n
        width = max(2, int(15.0 * n / rate) + 2)
        total = float(spec.sum()) or 1e-30
        purity = float(spec[max(0, k - width):k + width + 1].sum()) / total
        return freq, purity, rms
    # Pure Python: a shorter window keeps this affordable.
    x = list(samples[-4800:])
    n = len(x)
    mean = sum(x) / n
    x = [v - mean for v in x]
    energy = sum(v * v for v in x)
    rms = math.sqrt(energy / n)
    if energy <= 0:
        return 0.0, 0.0, 0.0
    best = max(range(50, 4000, 10), key=lambda f: _goertzel_power(x, f))
    best = max(range(best - 10, best + 11), key=lambda f: _goertzel_power(x, f))
    # Goertzel power of a full-scale sine over n samples is (A n / 2)^2; energy is A^2 n / 2.
    purity = min(1.0, _goertzel_power(x, best) * 2.0 / (n * energy))
    return float(best), purity, rms


class AudioMeter:
    """Collects decoded mono float samples from an appsink (streaming thread) for analysis."""

    def __init__(self, keep_seconds=2.0):
        self._lock = threading.Lock()
        self._chunks = collections.deque()
        self._kept = 0
        self._keep = int(keep_seconds * RATE)
        self.total_samples = 0
        self.first_audio_at = None
        self.last_audio_at = None

    def attach(self, pipeline, pad):
        """Links pad (RTP Opus) to depay ! opusdec ! audioconvert ! appsink inside pipeline."""
        bin_ = Gst.parse_bin_from_description(
            'rtpopusdepay ! opusdec plc=true ! audioconvert ! audioresample ! '
            'audio/x-raw,format=F32LE,rate=48000,channels=1,layout=interleaved ! '
            'appsink name=sink emit-signals=true sync=false max-buffers=50 drop=true', True)
        sink = bin_.get_by_name('sink')
        sink.connect('new-sample', self._on_sample)
        pipeline.add(bin_)
        bin_.sync_state_with_parent()
        pad.link(bin_.get_static_pad('sink'))

    def _on_sample(self, sink):
        sample = sink.emit('pull-sample')
        if sample is None:
            return Gst.FlowReturn.OK
        buf = sample.get_buffer()
        data = buf.extract_dup(0, buf.get_size())
        count = len(data) // 4
        if count:
            vals = struct.unpack(f'<{count}f', data[:count * 4])
            now = time.monotonic()
            with self._lock:
                self._chunks.append(vals)
                self._kept += count
                while self._chunks and self._kept - len(self._chunks[0]) >= self._keep:
                    self._kept -= len(self._chunks.popleft())
                self.total_samples += count
                if self.first_audio_at is None:
                    self.first_audio_at = now
                self.last_audio_at = now
        return Gst.FlowReturn.OK

    def recent(self, seconds):
        n = int(seconds * RATE)
        with self._lock:
            out = []
            for chunk in reversed(self._chunks):
                out[:0] = chunk
                if len(out) >= n:
                    break
        return out[-n:]

    def clear(self):
        with self._lock:
            self._chunks.clear()
            self._kept = 0

    def analyse(self, seconds=0.25):
        return dominant_frequency(self.recent(seconds))

    def hears(self, freq, tol=6.0, min_purity=0.6, min_rms=0.02, seconds=0.25):
        """True when the last `seconds` of audio are a clean tone at freq (+-tol Hz)."""
        samples = self.recent(seconds)
        if len(samples) < int(seconds * RATE):
            return False
        res = dominant_frequency(samples)
        return (res is not None and abs(res[0] - freq) <= tol and res[1] >= min_purity and
                res[2] >= min_rms)


# ---------------------------------------------------------------------------------------------
# WebRTC peers
# ---------------------------------------------------------------------------------------------

OPUS_RTP_CAPS = ('application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,'
                 'encoding-params=(string)2,stereo=(string)1,sprop-stereo=(string)1')


def _sdp_text(desc):
    return desc.sdp.as_text()


def _parse_sdp(text):
    res, msg = GstSdp.SDPMessage.new_from_text(text)
    if res != GstSdp.SDPResult.OK:
        raise ValueError(f'unparsable SDP ({res})')
    return msg


def sdp_attr(sdp, name):
    """Values of every a=name: line of an SDP text."""
    out = []
    for line in sdp.replace('\r\n', '\n').split('\n'):
        if line.startswith(f'a={name}:'):
            out.append(line[len(name) + 3:])
        elif line == f'a={name}':
            out.append('')
    return out


def munge_fingerprint(sdp):
    """Changes one hex byte of every a=fingerprint line (the certificate no longer matches)."""
    lines = sdp.split('\r\n')
    for i, line in enumerate(lines):
        if line.startswith('a=fingerprint:'):
            head, _, fp = line.partition(' ')
            parts = fp.split(':')
            parts[3] = '%02X' % (int(parts[3], 16) ^ 0x5A)
            lines[i] = head + ' ' + ':'.join(parts)
    return '\r\n'.join(lines)


def new_ice_credentials(sdp):
    """Replaces every a=ice-ufrag / a=ice-pwd value with one fresh random pair."""
    chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    ufrag = ''.join(random.choice(chars) for _ in range(16))
    pwd = ''.join(random.choice(chars) for _ in range(32))
    lines = sdp.split('\r\n')
    for i, line in enumerate(lines):
        if line.startswith('a=ice-ufrag:'):
            lines[i] = 'a=ice-ufrag:' + ufrag
        elif line.startswith('a=ice-pwd:'):
            lines[i] = 'a=ice-pwd:' + pwd
    return '\r\n'.join(lines)


def parse_candidate(cand):
    """(transport, address, port, type) of an ICE candidate line, or None."""
    fields = cand.strip()
    if fields.startswith('a='):
        fields = fields[2:]
    if fields.startswith('candidate:'):
        fields = fields[len('candidate:'):]
    f = fields.split()
    if len(f) < 8 or f[6] != 'typ':
        return None
    try:
        return f[2].lower(), f[4], int(f[5]), f[7]
    except ValueError:
        return None


class RtpLog:
    """RTP headers seen by a receiver, in arrival order (filled from a streaming thread)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.packets = []   # (monotonic time, ssrc, seq, timestamp, payload type, size)

    def add(self, data):
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        pt = data[1] & 0x7F
        if 64 <= pt <= 95:  # RTCP sharing the pad; not media
            return
        seq, ts, ssrc = struct.unpack('!HII', data[2:12])
        with self._lock:
            self.packets.append((time.monotonic(), ssrc, seq, ts, pt, len(data)))

    def snapshot(self):
        with self._lock:
            return list(self.packets)

    def count(self):
        with self._lock:
            return len(self.packets)

    def ssrcs(self):
        seen = []
        for p in self.snapshot():
            if p[1] not in seen:
                seen.append(p[1])
        return seen

    @staticmethod
    def continuity(packets):
        """Sequence and timestamp continuity of a packet list.

        Returns dict(backsteps, duplicates, lost, max_gap, ts_backsteps, max_ts_jump) where a
        backstep is a sequence number that is not after its predecessor (16-bit serial arithmetic),
        lost counts the numbers skipped, and ts values use 32-bit serial arithmetic.
        """
        out = dict(backsteps=0, duplicates=0, lost=0, max_gap=0, ts_backsteps=0, max_ts_jump=0)
        prev = None
        for p in packets:
            if prev is not None:
                d = (p[2] - prev[2]) & 0xFFFF
                if d == 0:
                    out['duplicates'] += 1
                elif d >= 0x8000:
                    out['backsteps'] += 1
                else:
                    out['lost'] += d - 1
                    out['max_gap'] = max(out['max_gap'], d)
                dt = (p[3] - prev[3]) & 0xFFFFFFFF
                if dt >= 0x80000000:
                    out['ts_backsteps'] += 1
                else:
                    out['max_ts_jump'] = max(out['max_ts_jump'], dt)
            prev = p
        return out


class _Peer:
    """A webrtcbin in its own pipeline, ICE on 127.0.0.1 only. Subclasses add media."""

    kind = None  # 'publish' or 'subscribe': the protocol's `pc` value

    def __init__(self, description, name):
        self.name = name
        element = Gst.parse_launch(description)
        if isinstance(element, Gst.Pipeline):
            self.pipe = element
        else:  # a description of one element yields that element, not a pipeline
            self.pipe = Gst.Pipeline.new(None)
            self.pipe.add(element)
        self.pipe.set_name(name)
        self.webrtc = self.pipe.get_by_name('webrtc')
        # Keep the agent referenced for the whole run (RECIPES); libnice skips loopback otherwise.
        self.ice_agent = self.webrtc.get_property('ice-agent')
        self.ice_agent.emit('add-local-ip-address', '127.0.0.1')
        self.errors = []
        self.local_candidates = []      # (mline, candidate) in gathering order
        self.gathering_done = False
        self.on_local_candidate = None  # fn(mline, candidate) on the main context; '' = end
        self.ice_state = None
        self.conn_state = None
        self.state_log = []             # (monotonic time, what, value)
        self.webrtc.connect('on-ice-candidate', self._on_ice_candidate)
        self.webrtc.connect('notify::ice-gathering-state', self._on_gathering)
        self.webrtc.connect('notify::ice-connection-state', self._on_ice_state)
        self.webrtc.connect('notify::connection-state', self._on_conn_state)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect('message::error', self._on_bus_error)
        self._bus = bus
        self.stopped = False
        self._last_ufrag = None
        self.notes = []
        self.restarts = 0
        self.selected_pairs = []        # (monotonic time, local, remote) from libnice
        if Nice is not None:
            agent = self.ice_agent.get_property('agent')
            agent.connect('new-selected-pair-full', self._on_selected_pair)

    def start(self):
        if self.pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise RuntimeError(f'{self.name}: pipeline failed to start')

    def stop(self):
        """Tears the pipeline down at once (no goodbye on the wire: sockets just close)."""
        if not self.stopped:
            self.stopped = True
            self.pipe.set_state(Gst.State.NULL)
            self._bus.remove_signal_watch()

    # Signals from webrtcbin threads -------------------------------------------------------------

    def _on_bus_error(self, bus, msg):
        err, dbg = msg.parse_error()
        self.errors.append(f'{msg.src.get_name()}: {err.message} ({dbg})')

    def _on_ice_candidate(self, webrtc, mline, cand):
        _on_main(self._local_candidate, mline, cand)

    def _local_candidate(self, mline, cand):
        self.local_candidates.append((mline, cand))
        if self.on_local_candidate:
            self.on_local_candidate(mline, cand)

    def _on_gathering(self, webrtc, pspec):
        state = webrtc.get_property('ice-gathering-state')
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            _on_main(self._gathering_complete)

    def _gathering_complete(self):
        if not self.gathering_done:
            self.gathering_done = True
            if self.on_local_candidate:
                self.on_local_candidate(0, '')

    def _on_selected_pair(self, agent, stream_id, component, local, remote):
        self.selected_pairs.append((time.monotonic(), local.addr.get_port(), remote.addr.get_port()))

    def _on_ice_state(self, webrtc, pspec):
        self.ice_state = webrtc.get_property('ice-connection-state')
        self.state_log.append((time.monotonic(), 'ice', self.ice_state.value_nick))

    def _on_conn_state(self, webrtc, pspec):
        self.conn_state = webrtc.get_property('connection-state')
        self.state_log.append((time.monotonic(), 'conn', self.conn_state.value_nick))

    # Offer/answer ------------------------------------------------------------------------------

    def create_offer(self, ice_restart=False):
        """Creates an offer and sets it as local description; returns the SDP text.

        ice_restart asks webrtcbin for new ICE credentials (option `ice-restart`); GStreamer 1.22
        ignores that option, so when the ufrag did not change the offer gets a fresh random
        ice-ufrag/ice-pwd before it is set: webrtcbin hands the local description's credentials to
        libnice on every set-local-description, which is all an ICE restart needs from this side.
        """
        opts = Gst.Structure.new_empty('options')
        if ice_restart:
            opts.set_value('ice-restart', True)
        promise = Gst.Promise.new()
        self.webrtc.emit('create-offer', opts, promise)
        # The description belongs to the reply, which belongs to the promise: keep both
        # alive until the copy is made.
        reply = _wait_promise(promise, f'{self.name}: create-offer')
        offer = reply.get_value('offer').copy()
        text = _sdp_text(offer)
        if ice_restart and sdp_attr(text, 'ice-ufrag') == self._last_ufrag:
            text = new_ice_credentials(text)
            offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER,
                                                           _parse_sdp(text))
            self._restart_nice_stream()
        promise2 = Gst.Promise.new()
        self.gathering_done = False
        self.webrtc.emit('set-local-description', offer, promise2)
        _wait_promise(promise2, f'{self.name}: set-local-description')
        self._last_ufrag = sdp_attr(text, 'ice-ufrag')
        return text

    def _restart_nice_stream(self):
        """nice_agent_restart_stream() on our ICE stream: forgets the old generation's check list
        and remote candidates (keeping the selected pair so media flows meanwhile), so the new
        remote candidates are checked and nominated with the new credentials."""
        if Nice is None:
            self.notes.append('gir1.2-nice-0.1 missing: ICE restart changes credentials only')
            return
        trans = self.transceiver
        dtls = trans.get_property('sender').get_property('transport') or \
            trans.get_property('receiver').get_property('transport')
        stream = dtls.get_property('transport').get_property('stream')
        agent = self.ice_agent.get_property('agent')
        if not agent.restart_stream(stream.get_property('stream-id')):
            raise RuntimeError(f'{self.name}: nice_agent_restart_stream failed')
        self.restarts += 1

    def create_answer(self):
        promise = Gst.Promise.new()
        self.webrtc.emit('create-answer', None, promise)
        reply = _wait_promise(promise, f'{self.name}: create-answer')
        answer = reply.get_value('answer').copy()
        promise2 = Gst.Promise.new()
        self.webrtc.emit('set-local-description', answer, promise2)
        _wait_promise(promise2, f'{self.name}: set-local-description')
        return _sdp_text(answer)

    def set_remote(self, sdp, answer=True):
        kind = GstWebRTC.WebRTCSDPType.ANSWER if answer else GstWebRTC.WebRTCSDPType.OFFER
        desc = GstWebRTC.WebRTCSessionDescription.new(kind, _parse_sdp(sdp))
        promise = Gst.Promise.new()
        self.webrtc.emit('set-remote-description', desc, promise)
        _wait_promise(promise, f'{self.name}: set-remote-description')

    def add_remote_candidate(self, mline, cand):
        if cand:
            self.webrtc.emit('add-ice-candidate', mline, cand)

    # Through the server ------------------------------------------------------------------------

    def connect_to(self, sig, munge=None, ice_restart=False, timeout=10.0):
        """Offers through `sig` (request `publish`/`subscribe`), applies the answer, trickles.

        Local candidates are held until the answer is in and then sent as `ice.candidate` with
        pc=self.kind; server candidates (answer SDP and `ice.candidate` events for our pc) go to
        webrtcbin. munge(sdp) may alter the offer sent (the local description stays the real one).
        Returns the answer SDP text; raises ProtocolError if the server refuses the offer.
        """
        if not hasattr(self, 'server_candidates'):
            self.server_candidates = []
            self.closed_events = []
            sig.listeners.append(self._on_server_event)
            self.sig = sig
        if self.pipe.get_state(0)[1] != Gst.State.PLAYING:
            self.start()
        self._answered = False
        self.on_local_candidate = self._send_candidate
        offer = self.create_offer(ice_restart=ice_restart)
        self.offer_sent = munge(offer) if munge else offer
        frame = sig.request(self.kind, timeout=timeout, sdp=self.offer_sent)
        if frame.get('type') != 'result':
            raise ProtocolError(frame)
        self.answer = frame['data']['sdp']
        for line in self.answer.replace('\r\n', '\n').split('\n'):
            if line.startswith('a=candidate:'):
                self.server_candidates.append(line[2:])
        self.set_remote(self.answer)
        self._answered = True
        # Send what was gathered while the offer was on its way (again after an ICE restart, as the
        # server forgets the previous generation's candidates).
        for mline, cand in self.local_candidates:
            self._send_candidate(mline, cand)
        if self.gathering_done:
            self._send_candidate(0, '')
        return self.answer

    def _send_candidate(self, mline, cand):
        if not self._answered or self.sig.closed:
            return
        self.sig.send({'type': 'ice.candidate', 'pc': self.kind, 'candidate': cand, 'sdpMid': '0',
                       'sdpMLineIndex': mline})

    def _on_server_event(self, frame):
        if frame.get('pc') != self.kind:
            return
        if frame.get('type') == 'ice.candidate':
            cand = frame.get('candidate') or ''
            if cand:
                self.server_candidates.append(cand)
                if not self.stopped:
                    self.add_remote_candidate(int(frame.get('sdpMLineIndex') or 0), cand)
        elif frame.get('type') == 'peer.closed':
            self.closed_events.append(frame)

    def server_udp_ports(self):
        """Ports of the server's 127.0.0.1 UDP candidates seen so far (answer and trickle)."""
        ports = set()
        for cand in getattr(self, 'server_candidates', []):
            c = parse_candidate(cand)
            if c and c[0] == 'udp' and c[1] == '127.0.0.1':
                ports.add(c[2])
        return sorted(ports)

    def connected(self):
        return self.conn_state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED

    def five_tuple(self):
        """(local port, server port) of the pair libnice selected last, or None."""
        return self.selected_pairs[-1][1:] if self.selected_pairs else None


class Publisher(_Peer):
    """Sends a live sine tone (stereo Opus, 128 kbps, 20 ms frames) from a sendonly transceiver."""

    kind = 'publish'

    def __init__(self, freq=440, name=None):
        self.freq = freq
        super().__init__(
            f'audiotestsrc is-live=true wave=sine freq={freq} volume=0.5 ! '
            'audio/x-raw,rate=48000,channels=2 ! audioconvert ! audioresample ! '
            'opusenc bitrate=128000 frame-size=20 ! rtpopuspay pt=111 ! '
            'application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! '
            'webrtcbin name=webrtc bundle-policy=max-bundle', name or f'pub{freq}')
        trans = self.webrtc.emit('get-transceiver', 0)
        trans.set_property('direction', GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        # The offer is generated from these: Opus/48000/2 with stereo=1 (caps from the payloader
        # alone give "OPUS/48000" without channels).
        trans.set_property('codec-preferences', Gst.Caps.from_string(OPUS_RTP_CAPS))
        self.transceiver = trans


class Listener(_Peer):
    """Receives Opus from a recvonly transceiver; logs RTP headers and analyses decoded audio.

    .rtp logs packets as they arrive (after SRTP, before the jitter buffer), .audio holds the
    decoded mono samples, .src_pads counts webrtcbin output streams (a new SSRC makes a new one).
    """

    kind = 'subscribe'

    def __init__(self, name='listener', red=False):
        super().__init__('webrtcbin name=webrtc bundle-policy=max-bundle', name)
        self.rtp = RtpLog()
        self.out_rtp = RtpLog()
        self.audio = AudioMeter()
        self.src_pads = []
        caps = Gst.Caps.from_string(OPUS_RTP_CAPS)
        self.transceiver = self.webrtc.emit(
            'add-transceiver', GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, caps)
        self.webrtc.connect('pad-added', self._on_pad_added)
        self.pipe.connect('deep-element-added', self._on_deep_element)

    def _on_deep_element(self, bin_, sub, element):
        factory = element.get_factory()
        if factory is not None and factory.get_name() == 'rtpssrcdemux':
            element.get_static_pad('sink').add_probe(
                Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, self._probe, self.rtp)

    @staticmethod
    def _probe(pad, info, log):
        if info.type & Gst.PadProbeType.BUFFER_LIST:
            lst = info.get_buffer_list()
            for i in range(lst.length()):
                buf = lst.get(i)
                log.add(buf.extract_dup(0, min(12, buf.get_size())))
        else:
            buf = info.get_buffer()
            if buf is not None:
                log.add(buf.extract_dup(0, min(12, buf.get_size())))
        return Gst.PadProbeReturn.OK

    def _on_pad_added(self, webrtc, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        self.src_pads.append(pad.get_name())
        pad.add_probe(Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, self._probe,
                      self.out_rtp)
        self.audio.attach(self.pipe, pad)

    def hears(self, freq, **kw):
        return self.audio.hears(freq, **kw)

    def describe(self):
        """One line about what the listener has seen, for diagnostics."""
        res = self.audio.analyse()
        tone = 'none' if res is None else '%.1f Hz purity %.2f rms %.3f' % res
        return (f'{self.name}: conn={self.conn_state and self.conn_state.value_nick} '
                f'ice={self.ice_state and self.ice_state.value_nick} rtp={self.rtp.count()} '
                f'ssrcs={[hex(s) for s in self.rtp.ssrcs()]} samples={self.audio.total_samples} '
                f'tone={tone} errors={self.errors}')


# ---------------------------------------------------------------------------------------------
# Raw UDP helpers for hostile-input tests (127.0.0.1 only)
# ---------------------------------------------------------------------------------------------

def hostile_datagrams(rng=None):
    """Garbage and truncated RTP/RTCP/STUN/DTLS-looking datagrams, as a list of bytes."""
    rng = rng or random.Random(1234)
    cookie = b'\x21\x12\xa4\x42'
    out = [
        b'',                                                   # empty datagram
        b'\x00',                                               # one byte
        b'\x80',                                               # RTP version bits only
        b'\x80\x6f\x00\x01',                                   # truncated RTP header
        b'\x80\x6f\x00\x01\x00\x00\x03\xc0\xde\xad\xbe',       # 11 bytes
        b'\x80\x6f\x00\x01\x00\x00\x03\xc0\xde\xad\xbe\xef',   # header, no payload
        b'\x90\x6f\x00\x02\x00\x00\x07\x80\xde\xad\xbe\xef\xbe\xde\x00\x09',  # ext claims 36 B
        b'\x8f\x6f\x00\x03\x00\x00\x0b\x40\xde\xad\xbe\xef',   # CSRC count 15, none present
        b'\xa0\x6f\x00\x04\x00\x00\x0f\x00\xde\xad\xbe\xef\x01\x02\xff',  # padding len 255
        b'\x80\xc8\x00\x06\xde\xad\xbe\xef',                   # RTCP SR, truncated
        b'\x81\xc9\xff\xff\xde\xad\xbe\xef',                   # RTCP RR, huge length
        b'\x80\xcd\x00\x02\x00\x00\x00\x01',                   # RTCP NACK-ish, short
        b'\x00\x01\x00',                                       # STUN type only
        b'\x00\x01\x00\x08' + cookie,                          # STUN claims 8 B of attrs, none
        b'\x00\x01\x00\x00' + cookie + b'\x00' * 4,            # STUN, transaction id cut
        b'\x00\x01\x00\x0c' + cookie + os.urandom(12) + b'\x00\x06\x00\x40abcd',  # USERNAME overrun
        b'\x00\x01\x00\x08' + cookie + os.urandom(12) + b'\x80\x28\x00\x04',  # FINGERPRINT cut
        b'\x01\x01\x00\x00' + cookie + os.urandom(12),         # unsolicited binding success
        b'\x16\xfe\xfd',                                       # DTLS record header cut
        b'\x16\xfe\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x40\x00',  # record claims 16 KiB
        b'\x16\xfe\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0c\x01\x00\x00\xff',  # CH cut
        b'\x17\xfe\xfd\x00\x01\x00\x00\x00\x00\x00\x01\x00\x20' + os.urandom(32),  # app data
        b'\x15\xfe\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x02\x28',  # alert
        b'\xff' * 1500,
        bytes(rng.getrandbits(8) for _ in range(1200)),
        b'\x80\x6f' + bytes(rng.getrandbits(8) for _ in range(170)),  # RTP-ish, bad SRTP tag
    ]
    for _ in range(40):
        out.append(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300))))
    return out


def spray_udp(ports, datagrams, rounds=3, host='127.0.0.1'):
    """Sends every datagram to every port, rounds times; returns how many were sent."""
    assert host.startswith('127.')
    sent = 0
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(rounds):
            for port in ports:
                for d in datagrams:
                    try:
                        s.sendto(d, (host, port))
                        sent += 1
                    except OSError:
                        pass  # ICMP port unreachable from an earlier datagram; keep going
    finally:
        s.close()
    return sent


def _ip_checksum(header):
    total = sum(struct.unpack(f'!{len(header) // 2}H', header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def spray_udp_spoofed(src_port, dst_port, datagrams, rounds=3, host='127.0.0.1'):
    """Sends every datagram from host:src_port (spoofed with a raw socket) to host:dst_port.

    This is how garbage reaches the server from an address it already trusts (a peer's own ICE
    5-tuple), past any check on the source. Needs CAP_NET_RAW; returns the number sent, or None
    when raw sockets are not allowed.
    """
    assert host.startswith('127.')
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except PermissionError:
        return None
    addr = socket.inet_aton(host)
    sent = 0
    try:
        for _ in range(rounds):
            for d in datagrams:
                udp = struct.pack('!HHHH', src_port, dst_port, 8 + len(d), 0) + d  # no checksum
                ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), random.getrandbits(16),
                                 0, 64, socket.IPPROTO_UDP, 0, addr, addr)
                ip = ip[:10] + struct.pack('!H', _ip_checksum(ip)) + ip[12:]
                try:
                    s.sendto(ip + udp, (host, 0))
                    sent += 1
                except OSError:
                    pass
    finally:
        s.close()
    return sent


# ---------------------------------------------------------------------------------------------
# TAP
# ---------------------------------------------------------------------------------------------

class Tap:
    """Prints a TAP stream: plan first, one line per check, diagnostics as comments."""

    def __init__(self, plan):
        self.plan = plan
        self.count = 0
        self.failed = 0
        self.server = None
        print(f'1..{plan}', flush=True)

    def ok(self, cond, desc, diag=None):
        self.count += 1
        if not cond:
            self.failed += 1
        print(f'{"ok" if cond else "not ok"} {self.count} - {desc}', flush=True)
        if not cond and diag:
            self.diag(diag)
        return bool(cond)

    def skip(self, reason):
        self.count += 1
        print(f'ok {self.count} # SKIP {reason}', flush=True)

    def diag(self, text):
        for line in str(text).splitlines():
            print(f'# {line}', flush=True)

    def bail(self, reason):
        print(f'Bail out! {reason}', flush=True)

    def finish(self):
        """Returns the exit status; prints the server log tail when something failed."""
        if self.count != self.plan:
            self.diag(f'planned {self.plan} checks, ran {self.count}')
            self.failed += 1
        if self.failed and self.server is not None:
            self.diag('--- encored log tail ---')
            self.diag(self.server.log_tail())
        return 1 if self.failed else 0


def run_test(plan, body, limit=75):
    """Runs body(tap) in a loopback-only namespace with a hard time limit; exits with TAP status.

    Exceptions abort the test with `Bail out!` and the server log tail. body may set tap.server.
    A watchdog thread ends the process after limit seconds whatever the main thread is doing.
    """
    enter_loopback_netns()
    tap = Tap(plan)

    def watchdog():
        tap.diag(f'test exceeded its {limit} s limit')
        if tap.server is not None:
            if tap.server.alive():
                tap.server.proc.kill()
            tap.diag('--- encored log tail ---')
            tap.diag(tap.server.log_tail())
        tap.bail(f'timeout after {limit} s')
        os._exit(1)
    timer = threading.Timer(limit, watchdog)
    timer.daemon = True
    timer.start()
    status = 1
    try:
        body(tap)
        status = tap.finish()
    except Exception as e:  # noqa: BLE001 - report anything as a bail out
        import traceback
        tap.diag(traceback.format_exc())
        if tap.server is not None:
            tap.diag('--- encored log tail ---')
            tap.diag(tap.server.log_tail())
        tap.bail(f'{type(e).__name__}: {e}')
        status = 1
    finally:
        timer.cancel()
        if tap.server is not None:
            tap.server.cleanup()
    sys.stdout.flush()
    os._exit(status)  # skip GStreamer/Soup finalisers in threads that may still be winding down


# ---------------------------------------------------------------------------------------------
# Standalone listener (a process the tests can SIGKILL)
# ---------------------------------------------------------------------------------------------

def _main_listen(argv):
    import argparse
    ap = argparse.ArgumentParser(prog='encore_client.py listen')
    ap.add_argument('--url', required=True)
    ap.add_argument('--room', required=True)
    ap.add_argument('--name', default='cli-listener')
    ap.add_argument('--seconds', type=float, default=60.0)
    a = ap.parse_args(argv)
    sig = Signaling(a.url, name=a.name)
    you = sig.call('room.join', room=a.room, name=a.name)['you']
    lis = Listener(a.name)
    lis.connect_to(sig)
    print(json.dumps({'event': 'subscribed', 'you': you}), flush=True)
    run_until(lambda: lis.audio.total_samples > RATE // 2, 15)
    res = lis.audio.analyse()
    print(json.dumps({'event': 'ready' if res else 'silent', 'tone': res,
                      'ports': lis.server_udp_ports()}), flush=True)
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline and not sig.closed:
        sleep(1.0)
        res = lis.audio.analyse()
        print(json.dumps({'event': 'status', 'tone': res, 'rtp': lis.rtp.count()}), flush=True)
    os._exit(0)


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == 'listen':
        _main_listen(sys.argv[2:])
    else:
        print(__doc__)
