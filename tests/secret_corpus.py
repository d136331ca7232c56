"""A corpus of secret shapes redaction must catch (issue 13).

Each shape is (name, text, secret): ``text`` is how the secret appears in
output, a config or a plan; ``secret`` is the part whose bytes must never
be stored or printed. Secrets are assembled from pieces at import time, so
this file holds no literal key a scanner would flag.
"""

from __future__ import annotations


def _j(*parts: str) -> str:
    return "".join(parts)


AWS_ID = _j("AKIA", "Q7XKZ3M2", "P9R4T6W8")
AWS_SECRET = _j("wJalrXUtnFEMI", "/K7MDENG/bPxRfi", "CYzq8Tq2mLp4")
GH = _j("ghp_", "Zq3mL9xT2vB8nK4p", "R7wY1cD6fH0jS5uE", "aGi2")
OPENAI = _j("sk-proj-", "Hq8ZrT4mVx2LpN9w", "Bk3YcF7sDj1Ue6Ga", "Ro0Ti5")
ANTHROPIC = _j("sk-ant-api03-", "Xm4Qz8Lr2Vt6Np0Wb", "Hc3Kf7Sd1Jg5Ue9Ya", "-Aa1Bb2Cc3")
SLACK = _j("xoxb-", "2847561930", "-5839201746", "-Qk4Lz9Xm2Vr7Tp3Wn8Bc6Yd")
JWT = _j("eyJhbGciOiJIUzI1NiJ9", ".", "eyJzdWIiOiJ1b2stdGVzdCIsIm5hbWUiOiJqb2UifQ", ".", "c2lnbmF0dXJlLWJ5dGVzLWhlcmUx")
PASSWORD = _j("Tr0ub4dor", "-and-", "Horse9Staple")
API_KEY = _j("d41f9c", "2b7e1a", "0c55e3", "9b8f72", "a6d4")
TOKEN = _j("tk_", "9fQ2", "mZ8x", "Lr4v", "Np7w")
BEARER = _j("ya29.", "a0AfH6SM", "Bq7xZr2L", "pK9vTn4W", "cY3mDs8F")
DB_PASS = _j("pg", "S3cr3t", "Pw0rd", "xyz")
KEY_BODY = [
    _j("MIIEowIBAAKCAQEA1s8Wq4Xv7ZrT9mLpN2bK3cF6yH0jR5uE", "8aGi1Ds4Qx7Vt2Lm9Nr"),
    _j("3Wn6Bc8Yd0Kf2Sh5Jg7Ue1Ra4Tp9Vm3Xz6Lq2Nw8Bd5Fh", "0Jk7Gs1Ua4Yr6Tc3Vp"),
    _j("Lr8Xz2Wq5Nm7Bd4Kf9Sh1Jg3Ue6Ra0Tp2Vm5Xc8Lq4Nw", "7Bd1Fh3Jk6Gs9Ua2Yr"),
]
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_BODY) + "\n-----END RSA PRIVATE KEY-----"
LONG_PAD = "x=1 " * 5000  # a 20,000-character line

SHAPES: list[tuple[str, str, str]] = [
    ("env, unquoted", f"API_KEY={API_KEY}", API_KEY),
    ("export", f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET),
    (
        "aws credentials file",
        f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n",
        AWS_SECRET,
    ),
    ("aws key id", f"using key {AWS_ID} now", AWS_ID),
    ("yaml token", f"token: {TOKEN}", TOKEN),
    ("yaml password, quoted", f'DB_PASSWORD: "{DB_PASS}"', DB_PASS),
    ("json secret", f'{{"client_secret": "{PASSWORD}", "ok": 1}}', PASSWORD),
    ("authorization header", f"Authorization: Bearer {BEARER}", BEARER),
    ("curl header", f'curl -H "Authorization: token {GH}" https://api.github.com', GH),
    ("bearer alone", f"sent bearer {BEARER} upstream", BEARER),
    ("github token", f"GH said {GH}.", GH),
    ("openai key", f"OPENAI_API_KEY is {OPENAI}", OPENAI),
    ("anthropic key", f"key={ANTHROPIC}", ANTHROPIC),
    ("slack token", f"slack {SLACK}", SLACK),
    ("jwt", f"jwt {JWT}", JWT),
    ("url password", f"postgresql://app:{DB_PASS}@db.internal:5432/app", DB_PASS),
    ("password assignment", f"password={PASSWORD}", PASSWORD),
    ("private key block", f"key:\n{PEM}\nafter", KEY_BODY[1]),
    ("private key, header cut off", f"{KEY_BODY[1][20:]}\n{KEY_BODY[2]}\n-----END RSA PRIVATE KEY-----\n", KEY_BODY[2]),
    (
        "private key, end cut off",
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY[0]}\n{KEY_BODY[1][:30]}",
        KEY_BODY[0],
    ),
    ("key body, no armour", "\n".join(KEY_BODY) + "\n", KEY_BODY[0]),
    ("github token, long line", f"{LONG_PAD}{GH} {LONG_PAD}", GH),
    ("aws key id, long line", f"{LONG_PAD}{AWS_ID}{LONG_PAD}", AWS_ID),
    ("assignment, long line", f"{LONG_PAD} SECRET_TOKEN={PASSWORD} {LONG_PAD}", PASSWORD),
]

# text redaction must leave alone
PLAIN: list[str] = [
    "collected 12 items; tests/test_x.py ....... [100%] in 0.52s",
    '{"input_tokens": 1200, "output_tokens": 345, "cache_read_input_tokens": 100000, "max_tokens": 4096}',
    "PWD=/home/dev/project OLDPWD=/home/dev",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  file.tar.gz",
    "commit 3f2a9c1e7b4d5a6f8e9d0c1b2a3f4e5d6c7b8a9f",
    "token: $GITHUB_TOKEN",
    "password: <your password here>",
    "tokens used: 12345",
]
