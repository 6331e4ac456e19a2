"""Secrets: what GPTMemory redacts, how fast, and what deleting an interaction removes.

Issue 15, items 1-5. Every fake secret below is generated from a seeded random
source at import time, so no token-shaped literal sits in the source.
"""

from __future__ import annotations

import base64
import json
import random
import re
import sqlite3
import string
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from menace.gpt_memory import GPTMemory, RetentionPolicy, redact
from menace.menace_memory_manager import MenaceMemoryManager
from menace.unified_event_bus import UnifiedEventBus

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))

RNG = random.Random(15)
UPPER = string.ascii_uppercase
LOWER = string.ascii_lowercase
DIGITS = string.digits
ALNUM = string.ascii_letters + DIGITS
UPPER_ALNUM = UPPER + DIGITS
LOWER_ALNUM = LOWER + DIGITS
HEX = "0123456789abcdef"
B64URL = ALNUM + "_-"
B64 = ALNUM + "+/"


def fake(alphabet: str, n: int, *, digit: bool = True) -> str:
    """``n`` random characters of ``alphabet`` (with a digit in it when the alphabet has one)."""
    chars = [RNG.choice(alphabet) for _ in range(n)]
    if digit and any(c.isdigit() for c in alphabet) and not any(c.isdigit() for c in chars):
        chars[RNG.randrange(n)] = RNG.choice([c for c in alphabet if c.isdigit()])
    return "".join(chars)


def uuid() -> str:
    return "-".join(fake(HEX, n) for n in (8, 4, 4, 4, 12))


def pem(kind: str, lines: int = 6) -> tuple[str, str]:
    body = "\n".join(fake(B64, 64) for _ in range(lines))
    label = f"{kind} PRIVATE KEY".strip()
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----", body.splitlines()[2]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def case(text: str, secret: str) -> tuple[str, str]:
    return text.format(s=secret), secret


# ---------------------------------------------------------------------------------------------
# Examples: for each rule id, a text holding a fake secret of that format and the secret.
# The issue's own cases come first; test_every_rule_has_an_example keeps this table complete.
# ---------------------------------------------------------------------------------------------

_pem_rsa, _pem_rsa_line = pem("RSA")
_pw = fake(ALNUM + "!#%", 14)

EXAMPLES: dict[str, list[tuple[str, str]]] = {
    # -- private keys
    "private-key": [
        (f"here is my key:\n{_pem_rsa}\nthanks", _pem_rsa_line),
        (lambda k: (f"key file:\n{k[0]}", k[1]))(pem("OPENSSH")),
        (lambda k: (f"{k[0]}", k[1]))(pem("EC")),
        (lambda k: (f"{k[0]}", k[1]))(pem("ENCRYPTED")),
        (lambda k: (f"gpg export: {k[0].replace('PRIVATE KEY', 'PRIVATE KEY BLOCK')}", k[1]))(pem("PGP")),
        # pasted cut short: no END line
        (lambda k: (k[0].rsplit("\n", 1)[0], k[1]))(pem("RSA")),
        # inside JSON, with escaped newlines (a GCP service-account file)
        (lambda k: (json.dumps({"type": "service_account", "private_key": k[0] + "\n"}), k[1]))(
            pem("")
        ),
    ],
    "putty-private-key": [
        case("PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nPrivate-Lines: 2\n{s}\nPrivate-MAC: 00",
             fake(B64, 64)),
    ],
    "age-secret-key": [case("AGE-SECRET-KEY-1{s}", fake("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58))],
    # -- credentials in URLs and headers
    "url-credentials": [
        case("DATABASE_URL is postgres://admin:{s}@db.internal:5432/app", _pw),
        case("clone https://user:{s}@git.example.com/repo.git", fake(ALNUM, 12)),
        case("redis://:{s}@cache:6379/0", fake(ALNUM, 20)),
        case("amqp://guest:{s}@rabbit/", "p" + fake(ALNUM, 6) + "@" + fake(ALNUM, 5)),
    ],
    "authorization-header": [
        case("curl -H 'Authorization: Token {s}' https://api.example.com", fake(ALNUM, 32)),
        case('{{"Authorization": "{s}"}}', fake(B64URL, 40)),
    ],
    "bearer-token": [
        case("Authorization: Bearer {s}", "abc.DEF-123_xyz~tok"),
        case("send bearer {s} to the API", fake(B64URL, 30)),
    ],
    "basic-auth": [
        case("Authorization: Basic {s}", b64("alice:" + _pw)),
        case("the proxy wants Basic {s} now", b64("svc-user:" + fake(ALNUM, 16))),
    ],
    "curl-auth-user": [case("curl -u deploy:{s} https://ci.example.com", fake(ALNUM, 18))],
    "netrc": [case("machine api.example.com login bob password {s}", fake(ALNUM, 16))],
    "nuget-config-password": [case('<add key="ClearTextPassword" value="{s}" />', fake(ALNUM, 16))],
    "azure-sas-signature": [
        case("https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sig={s}&se=2030",
             fake(ALNUM, 40) + "%3D"),
        case("https://bucket.s3.amazonaws.com/k?X-Amz-Signature={s}", fake(HEX, 64)),
    ],
    # -- assignments: environment variables, config files, code
    "password-assignment": [
        case("DB_PASSWORD={s}", "hunter2"),
        case("PGPASSWORD={s} psql -h db", fake(ALNUM, 12)),
        case("export MYSQL_PWD={s}", fake(ALNUM, 12)),
        case("password = {s}", "correct horse battery staple"),
        case('{{"password": "{s}"}}', "k3y V4lue with spaces"),
        case("db:\n  password: '{s}'\n", fake(ALNUM, 10)),
        case("<password>{s}</password>", fake(ALNUM, 10)),
        case("spring.datasource.passwd={s}", fake(ALNUM, 10)),
        case("SMTP_PASS={s}", fake(ALNUM, 10)),
        case("GPG_PASSPHRASE={s}", "four words in here"),
        case("dbPassword: {s}", fake(ALNUM, 10)),
    ],
    "secret-assignment": [
        case("client_secret={s}", fake(ALNUM, 24)),
        case("JWT_SECRET: {s}", "a long phrase of words"),
        case("clientSecret = '{s}'", fake(ALNUM, 24)),
    ],
    "token-assignment": [
        case("GITHUB_TOKEN={s}", fake(ALNUM, 40)),
        case("//registry.npmjs.org/:_authToken={s}", uuid()),
        case("X-Auth-Token: {s}", fake(ALNUM, 24)),
        case("https://api.example.com/v1?access_token={s}&page=2", fake(ALNUM, 24)),
    ],
    "key-assignment": [
        case("OPENAI_API_KEY={s}", "abc123" + fake(ALNUM, 26)),
        case("aws_secret_access_key = {s}", fake(B64, 40)),
        case("apiKey: '{s}'", fake(ALNUM, 24)),
        case("DefaultEndpointsProtocol=https;AccountName=x;AccountKey={s}", fake(B64, 86) + "=="),
        case("X-API-Key: {s}", fake(ALNUM, 32)),
    ],
    "generic-api-key": [case("auth_header_value => {s}", fake(ALNUM, 32))],
    # -- cloud providers
    "aws-access-token": [
        case("aws {s} here", "AKIA" + fake(UPPER_ALNUM, 16)),
        case("temporary key {s}", "ASIA" + fake(UPPER_ALNUM, 16)),
    ],
    "aws-amazon-bedrock-api-key-long-lived": [case("{s}", "ABSK" + fake(B64, 120))],
    "aws-amazon-bedrock-api-key-short-lived": [
        case("{s}", "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t" + fake(B64, 40))
    ],
    "gcp-api-key": [case("key={s}", "AIza" + fake(B64URL, 35))],
    "azure-ad-client-secret": [case("secret {s}", fake(ALNUM, 3) + "8Q~" + fake(ALNUM + "_~.-", 34))],
    "alibaba-access-key-id": [case("{s}", "LTAI" + fake(ALNUM, 20))],
    "digitalocean-pat": [case("do {s}", "dop_v1_" + fake(HEX, 64))],
    "heroku-api-key-v2": [case("{s}", "HRKU-AA" + fake(B64URL, 58))],
    "flyio-access-token": [case("{s}", "fo1_" + fake(B64URL, 43)), case("{s}", "fm2_" + fake(B64, 120))],
    "cloudflare-origin-ca-key": [case("{s}", "v1.0-" + fake(HEX, 24) + "-" + fake(HEX, 146))],
    "databricks-api-token": [case("{s}", "dapi" + fake(HEX, 32))],
    "dynatrace-api-token": [case("{s}", "dt0c01." + fake(UPPER_ALNUM, 24) + "." + fake(ALNUM, 64))],
    "hashicorp-tf-api-token": [case("{s}", fake(LOWER_ALNUM, 14) + ".atlasv1." + fake(B64URL, 67))],
    "vault-service-token": [case("VAULT {s}", "hvs." + fake(B64URL, 95))],
    "vault-batch-token": [case("{s}", "hvb." + fake(B64URL, 140))],
    "openshift-user-token": [case("{s}", "sha256~" + fake(B64URL, 43))],
    "yandex-api-key": [case("{s}", "AQVN" + fake(B64URL, 36))],
    "scalingo-api-token": [case("{s}", "tk-us-" + fake(B64URL, 48))],
    "planetscale-api-token": [case("{s}", "pscale_tkn_" + fake(ALNUM, 43))],
    "pulumi-api-token": [case("{s}", "pul-" + fake(HEX, 40))],
    "doppler-api-token": [case("{s}", "dp.pt." + fake(ALNUM, 43))],
    "prefect-api-token": [case("{s}", "pnu_" + fake(ALNUM, 36))],
    "octopus-deploy-api-key": [case("{s}", "API-" + fake(UPPER_ALNUM, 26))],
    "harness-api-key": [
        case("{s}", "pat." + fake(B64URL, 22) + "." + fake(ALNUM, 24) + "." + fake(ALNUM, 20))
    ],
    "infracost-api-token": [case("{s}", "ico-" + fake(ALNUM, 32))],
    "clickhouse-cloud-api-secret-key": [case("{s}", "4b1d" + fake(ALNUM, 38))],
    # -- code hosting and package registries
    "github-pat": [
        case("token {s}", "ghp_" + fake(ALNUM, 36)),
        case("{s}", "gho_" + fake(ALNUM, 36)),
        case("{s}", "ghs_" + fake(ALNUM, 36)),
    ],
    "github-fine-grained-pat": [case("use {s} now", "github_pat_" + fake(ALNUM, 22) + "_" + fake(ALNUM, 59))],
    "gitlab-pat": [
        case("{s}", "glpat-" + fake(B64URL, 20)),
        case("{s}", "glrt-" + fake(B64URL, 20)),
        case("{s}", "glpat-" + fake(B64URL, 27) + "." + fake(LOWER_ALNUM, 9)),
    ],
    "gitlab-rrt": [case("{s}", "GR1348941" + fake(B64URL, 20))],
    "gitlab-session-cookie": [case("Cookie: _gitlab_session={s}", fake(LOWER_ALNUM, 32))],
    "npm-access-token": [case("{s}", "npm_" + fake(ALNUM, 36))],
    "pypi-upload-token": [case("{s}", "pypi-AgEIcHlwaS5vcmc" + fake(B64URL, 60))],
    "rubygems-api-token": [case("{s}", "rubygems_" + fake(HEX, 48))],
    "clojars-api-token": [case("{s}", "CLOJARS_" + fake(LOWER_ALNUM, 60))],
    "artifactory-api-key": [case("{s}", "AKCp" + fake(ALNUM, 69))],
    "artifactory-reference-token": [case("{s}", "cmVmd" + fake(ALNUM, 59))],
    "sonar-api-token": [case("{s}", "squ_" + fake(HEX, 40))],
    "sourcegraph-access-token": [case("{s}", "sgp_" + fake(HEX, 16) + "_" + fake(HEX, 40))],
    "readme-api-token": [case("{s}", "rdme_" + fake(LOWER_ALNUM, 70))],
    "linear-api-key": [case("{s}", "lin_api_" + fake(ALNUM, 40))],
    "postman-api-token": [case("{s}", "PMAK-" + fake(HEX, 24) + "-" + fake(HEX, 34))],
    # -- AI services
    "openai-api-key": [
        case("my key is {s}", "sk-" + fake(ALNUM, 28)),
        case("{s}", "sk-proj-" + fake(B64URL, 60)),
        case("anthropic {s}", "sk-ant-api03-" + fake(B64URL, 93) + "AA"),
    ],
    "huggingface-access-token": [case("HF {s}", "hf_" + fake(ALNUM, 34, digit=False))],
    "huggingface-organization-api-token": [case("{s}", "api_org_" + fake(ALNUM, 34, digit=False))],
    "perplexity-api-key": [case("{s}", "pplx-" + fake(ALNUM, 48))],
    "1password-service-account-token": [case("{s}", "ops_eyJ" + fake(B64, 260))],
    "1password-secret-key": [
        case("{s}", "A3-" + "-".join(fake(UPPER_ALNUM, n) for n in (6, 11, 5, 5, 5)))
    ],
    # -- chat, mail, payments and other services
    "slack-token": [
        case("slack {s}", "xoxb-" + fake(DIGITS, 12) + "-" + fake(DIGITS, 12) + "-" + fake(ALNUM, 24)),
        case("{s}", "xoxp-" + "-".join(fake(DIGITS, 12) for _ in range(3)) + "-" + fake(HEX, 32)),
        case("{s}", "xoxe.xoxp-1-" + fake(UPPER_ALNUM, 163)),
    ],
    "slack-app-token": [case("{s}", "xapp-1-A" + fake(UPPER_ALNUM, 10) + "-" + fake(DIGITS, 13) + "-" + fake(HEX, 64))],
    "slack-webhook-url": [
        case("https://hooks.slack.com/services/{s}", "T" + fake(UPPER_ALNUM, 8) + "/B" + fake(UPPER_ALNUM, 10) + "/" + fake(ALNUM, 24))
    ],
    "microsoft-teams-webhook": [
        case("https://acme.webhook.office.com/webhookb2/{s}",
             f"{uuid()}@{uuid()}/IncomingWebhook/{fake(HEX, 32)}/{uuid()}")
    ],
    "discord-bot-token": [
        case("bot token M" + fake(B64URL, 23) + "{s}", "." + fake(B64URL, 6) + "." + fake(B64URL, 27))
    ],
    "telegram-bot-api-token": [case("bot " + fake(DIGITS, 9) + ":{s}", "AA" + fake(B64URL, 33))],
    "twilio-api-key": [case("{s}", "SK" + fake(HEX, 32))],
    "sendgrid-api-token": [case("{s}", "SG." + fake(B64URL, 22) + "." + fake(B64URL, 43))],
    "sendinblue-api-token": [case("{s}", "xkeysib-" + fake(HEX, 64) + "-" + fake(ALNUM, 16))],
    "mailgun-private-api-token": [case("{s}", "key-" + fake(HEX, 32))],
    "mailgun-pub-key": [case("{s}", "pubkey-" + fake(HEX, 32))],
    "mailchimp-api-key": [case("{s}", fake(HEX, 32) + "-us12")],
    "stripe-access-token": [
        case("stripe {s}", "sk_live_" + fake(ALNUM, 24)),
        case("{s}", "rk_test_" + fake(ALNUM, 24)),
    ],
    "stripe-webhook-secret": [case("{s}", "whsec_" + fake(ALNUM, 32))],
    "square-access-token": [case("{s}", "sq0atp-" + fake(B64URL, 22)), case("{s}", "sq0csp-" + fake(B64URL, 43))],
    "shopify-access-token": [case("{s}", "shpat_" + fake(HEX, 32)), case("{s}", "shpss_" + fake(HEX, 32))],
    "shippo-api-token": [case("{s}", "shippo_live_" + fake(HEX, 40))],
    "duffel-api-token": [case("{s}", "duffel_live_" + fake(B64URL, 43))],
    "easypost-api-token": [case("{s}", "EZAK" + fake(ALNUM, 54))],
    "flutterwave-secret-key": [case("{s}", "FLWSECK_TEST-" + fake(HEX, 32) + "-X")],
    "frameio-api-token": [case("{s}", "fio-u-" + fake(B64URL, 64))],
    "adobe-client-secret": [case("{s}", "p8e-" + fake(ALNUM, 32))],
    "airtable-personnal-access-token": [case("{s}", "pat" + fake(ALNUM, 14) + "." + fake(HEX, 64))],
    "notion-api-token": [case("{s}", "ntn_" + fake(DIGITS, 11) + fake(ALNUM, 35))],
    "new-relic-user-api-key": [case("{s}", "NRAK-" + fake(UPPER_ALNUM, 27))],
    "grafana-api-key": [case("{s}", "eyJrIjoi" + fake(ALNUM, 80))],
    "grafana-cloud-api-token": [case("{s}", "glc_" + fake(ALNUM, 40))],
    "grafana-service-account-token": [case("{s}", "glsa_" + fake(ALNUM, 32) + "_" + fake(HEX, 8))],
    "sentry-org-token": [case("{s}", "sntrys_eyJpYXQiO" + fake(B64, 80))],
    "sentry-user-token": [case("{s}", "sntryu_" + fake(HEX, 64))],
    "settlemint-personal-access-token": [case("{s}", "sm_pat_" + fake(ALNUM, 16))],
    "intra42-client-secret": [case("{s}", "s-s4t2ud-" + fake(HEX, 64))],
    "maxmind-license-key": [case("{s}", fake(ALNUM, 6) + "_" + fake(ALNUM, 29) + "_mmk")],
    "authress-service-client-access-key": [
        case("sc_{s}", fake(LOWER_ALNUM, 10) + "." + fake(LOWER_ALNUM, 5) + ".acc_" + fake(LOWER_ALNUM, 12)
             + "." + fake(B64URL, 40))
    ],
    "plaid-api-token": [case("{s}", "access-production-" + uuid())],
    "dropbox-short-lived-api-token": [case("{s}", "sl." + fake(B64URL, 135))],
    "facebook-page-access-token": [case("{s}", "EAAM" + fake(ALNUM, 120))],
    "facebook-access-token": [case("facebook {s}", fake(DIGITS, 15) + "|" + fake(B64URL, 30))],
    "twitter-bearer-token": [case("{s}", "A" * 22 + fake(ALNUM, 90))],
    "jwt": [
        case("token {s} end", "eyJ" + fake(B64URL, 30) + ".eyJ" + fake(B64URL, 60) + "." + fake(B64URL, 43)),
    ],
    "jwt-base64": [case("{s}", "ZXlKaGJHY2lPaU" + fake(B64, 80))],
    "vendor-keyword": [
        case("DATADOG_APP={s}", fake(LOWER_ALNUM, 40)),
        case("twitter consumer: {s}", fake(ALNUM, 25)),
        case("heroku = {s}", uuid()),
    ],
}


def all_examples():
    return [
        pytest.param(text, secret, id=f"{rule}-{i}")
        for rule, cases in EXAMPLES.items()
        for i, (text, secret) in enumerate(cases)
    ]


# ---------------------------------------------------------------------------------------------
# Item 1: environment-variable and assignment forms
# ---------------------------------------------------------------------------------------------

ISSUE_ASSIGNMENTS = [
    ("DB_PASSWORD=hunter2", "hunter2"),
    ("OPENAI_API_KEY=abc123def456ghi789jkl", "abc123def456ghi789jkl"),
    ("client_secret=Zq8xLm2Np4Rt6Vw", "Zq8xLm2Np4Rt6Vw"),
    ("aws_secret_access_key=wJalrXUtnFEMIK7MDENGbPxRfiCY", "wJalrXUtnFEMIK7MDENGbPxRfiCY"),
    ("PGPASSWORD=s3cr3tpw psql", "s3cr3tpw"),
    ("MYSQL_PWD=s3cr3tpw mysql", "s3cr3tpw"),
]


@pytest.mark.parametrize("text, secret", ISSUE_ASSIGNMENTS)
def test_environment_variable_forms_are_redacted(text, secret):
    cleaned = redact(text)
    assert secret not in cleaned
    assert "[REDACTED]" in cleaned
    assert cleaned.startswith(text.split("=")[0] + "=")  # the name stays readable


def test_a_password_phrase_is_redacted_whole():
    cleaned = redact("password = correct horse battery staple")
    assert cleaned == "password = [REDACTED]"
    for word in ("correct", "horse", "battery", "staple"):
        assert word not in cleaned


SUFFIXES = ["PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "_KEY", "_PWD", "_PASS"]
SECRET_ALPHABET = ALNUM + "!#%*+-./=@^_~"


def _spelling(name: str, style: str) -> str:
    if style == "lower":
        return name.lower()
    if style == "camel":
        parts = [p for p in name.lower().split("_") if p]
        return parts[0] + "".join(p.capitalize() for p in parts[1:]) if parts else name
    return name


ASSIGNMENTS = dict(
    prefix=st.from_regex(r"[A-Z][A-Z0-9]{0,10}(_[A-Z][A-Z0-9]{0,8})?", fullmatch=True),
    glue=st.sampled_from(["", "_"]),
    suffix=st.sampled_from(SUFFIXES),
    style=st.sampled_from(["upper", "lower", "camel"]),
    operator=st.sampled_from(["=", ": ", " = ", ":", "=>", " := "]),
    quote=st.sampled_from(["", '"', "'"]),
    value=st.text(alphabet=SECRET_ALPHABET, min_size=8, max_size=40),
    before=st.sampled_from(["", "export ", "  ", "config: ", "\n", "set "]),
    after=st.sampled_from(["", "\n", "\nNEXT=1", " # prod"]),
)


def check_generated_assignment(prefix, glue, suffix, style, operator, quote, value, before, after):
    """NAME<op>VALUE with NAME ending in a secret word: the value is gone, the name stays."""
    from menace.redaction import is_identifier_key, is_placeholder

    if quote == "" and after == " # prod" and suffix in ("_KEY", "TOKEN"):
        after = ""  # an unquoted token value ends at the space: "# prod" is not part of it
    name = _spelling(prefix + glue + suffix, style)
    if style == "camel" and suffix.startswith("_"):
        name = prefix.lower() + "_" + suffix.strip("_").lower()  # camelCase loses the separator
    if quote:
        value = value.replace(quote, "").replace("\\", "") or "x" * 8
        if len(value) < 8:
            value = value + "Q1w2e3r4"
    if not quote and ("#" in value or value.startswith(("/", "~"))):
        value = "v" + value.replace("#", "")
    if is_placeholder(value):  # documented exceptions: None, true, ${VAR}, str, ...
        value = "Z9" + value
    assume(not is_identifier_key(name))  # documented too: primary_key, MSG_KEY, ... hold identifiers
    text = f"{before}{name}{operator}{quote}{value}{quote}{after}"
    cleaned = redact(text)
    head = f"{before}{name}{operator}"
    assert cleaned.startswith(head), cleaned
    rest = cleaned[len(head):]
    assert value not in rest, (text, cleaned)
    assert "[REDACTED]" in rest


test_property_generated_secret_assignments_are_redacted = FAST(
    given(**ASSIGNMENTS)(check_generated_assignment)
)
test_property_generated_secret_assignments_are_redacted_slow = pytest.mark.slow(
    SLOW(given(**ASSIGNMENTS)(check_generated_assignment))
)


# ---------------------------------------------------------------------------------------------
# Item 3: the formats maintained secret scanners know
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, secret", all_examples())
def test_known_secret_formats_are_redacted(text, secret):
    cleaned = redact(text)
    assert secret not in cleaned, cleaned
    assert "[REDACTED]" in cleaned


def test_every_rule_has_an_example_and_reports_its_id():
    from menace.redaction import RULES, find_secrets

    ids = {rule.id for rule in RULES}
    assert ids == set(EXAMPLES), (sorted(ids - set(EXAMPLES)), sorted(set(EXAMPLES) - ids))
    for rule_id, cases in EXAMPLES.items():
        # A span is reported once, by the first rule that finds it: each rule must be
        # the finder in at least one of its examples, and every secret must be covered.
        reported = set()
        for text, secret in cases:
            found = find_secrets(text)
            reported.update(f.rule_id for f in found)
            start = text.index(secret)
            assert any(f.start <= start and start + len(secret) <= f.end for f in found), (rule_id, found)
        assert rule_id in reported, (rule_id, reported)


def test_every_rule_names_its_source():
    from menace.redaction import RULES

    for rule in RULES:
        assert rule.source in {"gitleaks", "detect-secrets", "menace"}, rule
        assert rule.keywords, f"{rule.id} runs on every text: give it a keyword"
        assert all(k == k.lower() for k in rule.keywords), rule.id


def test_issue_cases_pem_urls_and_vendor_tokens():
    stripe = "sk_live_" + fake(ALNUM, 24)
    hf = "hf_" + fake(ALNUM, 34, digit=False)
    gitlab = "glpat-" + fake(B64URL, 20)
    npm = "npm_" + fake(ALNUM, 36)
    slack_app = "xapp-1-A0" + fake(UPPER_ALNUM, 9) + "-" + fake(DIGITS, 13) + "-" + fake(HEX, 64)
    aws_temp = "ASIA" + fake(UPPER_ALNUM, 16)
    fine_grained = "github_pat_" + fake(ALNUM, 22) + "_" + fake(ALNUM, 59)
    text = (
        f"{_pem_rsa}\npostgres://admin:PASS{_pw}@host/db https://user:pw{_pw}@example.com/x "
        f"Authorization: Basic {b64('bob:' + _pw)}\n"
        f"{stripe} {hf} {gitlab} {npm} {slack_app} {aws_temp} {fine_grained}"
    )
    cleaned = redact(text)
    for secret in (_pem_rsa_line, "PASS" + _pw, "pw" + _pw, b64("bob:" + _pw), stripe, hf, gitlab,
                   npm, slack_app, aws_temp, fine_grained):
        assert secret not in cleaned, secret
    assert "-----BEGIN RSA PRIVATE KEY-----" in cleaned  # what was there stays legible
    assert "postgres://admin:[REDACTED]@host/db" in cleaned


# ---------------------------------------------------------------------------------------------
# False positives: ordinary text survives
# ---------------------------------------------------------------------------------------------

ORDINARY = [
    "Use the password field on the login form; the token budget is 4k.",
    "Fixed in commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904, see the changelog.",
    "Request 123e4567-e89b-12d3-a456-426614174000 failed after 3 retries.",
    "sorted(items, key=lambda item: item[1])",
    "for key, value in mapping.items():",
    "def check_password(password: str) -> bool:",
    "password: Optional[str] = None",
    "The bearer of this letter is a friend of mine.",
    "Basic usage: call run() twice. Basic authentication is disabled.",
    "client = OpenAI(max_tokens=4096, temperature=0.2)",
    "primary_key=True, sort_key = itemgetter(1)",
    "Open http://localhost:8080/api/v1/items?page=2 and git@github.com:owner/repo.git",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n-----END CERTIFICATE-----",
    "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "The access key ID is shown in the console; rotate the secret yearly.",
    "token_count: 1234, tokens used: 88",
    "Call me at 555-0100 or write to user@example.com.",
    "import numpy as np; x = np.linalg.norm(v, ord=2)",
    "API_URL = 'https://api.example.com/v2'",
    "if not password:\n    raise ValueError('password is required')",
    "self.password = password",
    "The risk-assessment-framework-document is ready.",
    "eyJhbGciOi is how a JWT header starts",
    "PWD=/home/alice/projects",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_code_hashes_and_ids_survive(text):
    assert redact(text) == text


WORDS = (  # no "bearer": "bearer <uuid>" is a credential by design
    "the a to of and in is it for on with as was be at by this that from or have an are not "
    "but all they we can one which there their if will up out about more so when what some "
    "password token secret key api auth basic access credential private public login "
    "commit hash uuid request error value config server client deploy build test run user "
    "session cookie header body model train learn pathway memory prompt response"
).split()
SEPARATORS = [" ", " ", " ", ", ", ". ", "; ", "! ", "? ", " - ", "\n"]


@st.composite
def prose(draw):
    parts = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            parts.append(draw(st.uuids()).hex if draw(st.booleans()) else str(draw(st.uuids())))
        elif kind == 1:
            parts.append(draw(st.text(alphabet=HEX, min_size=40, max_size=40)))
        elif kind == 2:
            parts.append(str(draw(st.integers(-(10**12), 10**12))))
        else:
            word = draw(st.sampled_from(WORDS))
            parts.append(word.capitalize() if draw(st.booleans()) else word)
        parts.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(parts)


def check_unchanged(text):
    assert redact(text) == text


def check_idempotent(text):
    once = redact(text)
    assert isinstance(once, str)
    assert redact(once) == once


test_property_prose_with_ids_and_hashes_is_unchanged = FAST(given(text=prose())(check_unchanged))
test_property_prose_with_ids_and_hashes_is_unchanged_slow = pytest.mark.slow(
    SLOW(given(text=prose())(check_unchanged))
)
test_property_redact_is_idempotent_and_total = FAST(given(text=st.text(max_size=300))(check_idempotent))
test_property_redact_is_idempotent_and_total_slow = pytest.mark.slow(
    SLOW(given(text=st.text(max_size=2000))(check_idempotent))
)


# ---------------------------------------------------------------------------------------------
# Item 4: linear time on any input
# ---------------------------------------------------------------------------------------------

MILLION = 1_000_000


def _cpu(fn, *args) -> float:
    start = time.process_time()
    fn(*args)
    return time.process_time() - start


@pytest.mark.timeout(30)
def test_adversarial_jwt_prefix_million_characters_is_fast():
    text = ("-eyJ" * (MILLION // 4 + 1))[:MILLION]
    assert _cpu(redact, text) < 1.0  # was ~6 minutes (193 s of CPU for a similar prompt)


def adversarial_inputs(size: int) -> dict[str, str]:
    """Inputs built from every rule's keywords and example: each repeated, cut, glued, stretched."""
    from menace.redaction import RULES

    texts: dict[str, str] = {}

    def fill(name: str, unit: str) -> None:
        if unit:
            texts[name] = (unit * (size // len(unit) + 1))[:size]

    for rule in RULES:
        for kw in rule.keywords:
            fill(f"{rule.id}:{kw}:repeat", kw)
            fill(f"{rule.id}:{kw}:upper", kw.upper())
            fill(f"{rule.id}:{kw}:=", kw + "=")
            fill(f"{rule.id}:{kw}:run", kw + "a" * (size // 2))
            fill(f"{rule.id}:{kw}:ops", kw + " = : ' \" ")
    for rule_id, cases in EXAMPLES.items():
        for i, (text, secret) in enumerate(cases):
            fill(f"{rule_id}:{i}:glued", secret)
            fill(f"{rule_id}:{i}:short", secret[:-1])
            fill(f"{rule_id}:{i}:text", text)
            fill(f"{rule_id}:{i}:runs", secret[: max(1, len(secret) // 3)] + secret[-1] * 5000 + "=:@.")
            for glue in "-_.=":  # the prefix as written, glued to itself by a token character
                fill(f"{rule_id}:{i}:prefix{glue}", glue + secret[:4])
            fill(f"{rule_id}:{i}:half-", secret[: len(secret) // 2] + "-")
    for name, unit in {
        "equals": "=", "colons": ":", "dashes": "-", "dots": ".", "quotes": "'\"", "newlines": "\n",
        "url": "://", "at": "a:b@", "word": "a", "digits": "7", "base64": "QUJD", "pem-dashes": "-----",
        "spaces": " ", "mixed": "ey.-_=:/+@",
    }.items():
        fill(name, unit)
    return texts


def test_every_adversarial_input_is_linear():
    """20k characters of each adversarial input in under 0.03 s: 1.5 s per million if
    linear, while the old quadratic JWT pattern took 0.18 s at 20k (1M runs in the slow
    suite). The machine is shared: an input over the bound is timed again, the faster counts.
    """
    worst = {}
    for name, text in adversarial_inputs(20_000).items():
        took = _cpu(redact, text)
        worst[name] = took if took < 0.03 else min(took, _cpu(redact, text))
    slowest = sorted(worst.items(), key=lambda kv: -kv[1])[:5]
    assert slowest[0][1] < 0.03, slowest


@pytest.mark.slow
def test_every_adversarial_input_is_linear_at_a_million_characters():
    """The slowest inputs take ~0.4 s on a quiet machine; CI's shared cores once made one
    1.02 s of CPU. An input over the bound is timed twice more and the fastest counts (a
    quadratic one stays over: the JWT prefix took 193 s)."""
    for name, text in adversarial_inputs(MILLION).items():
        took = _cpu(redact, text)
        if took >= 1.0:
            took = min(took, _cpu(redact, text), _cpu(redact, text))
        assert took < 1.0, (name, took)


def test_a_million_characters_of_everything_at_once_is_well_under_a_second():
    texts = list(adversarial_inputs(2_000).values())
    text = "".join(texts)
    text = (text * (MILLION // len(text) + 1))[:MILLION]
    assert _cpu(redact, text) < 1.0


def _rule_alphabets() -> list[tuple[str, str]]:
    from menace.redaction import RULES

    out = []
    for rule in RULES:
        chars = set("".join(rule.keywords))
        for text, _ in EXAMPLES.get(rule.id, []):
            chars |= set(text)
        out.append((rule.id, "".join(sorted(chars)) + " =:\"'"))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_property_random_text_from_a_rules_alphabet_is_fast(data):
    rule_id, alphabet = data.draw(st.sampled_from(_rule_alphabets()))
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    text = "".join(rng.choices(alphabet, k=100_000))
    assert _cpu(redact, text) < 0.15, rule_id


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_property_random_million_from_a_rules_alphabet_is_fast(data):
    rule_id, alphabet = data.draw(st.sampled_from(_rule_alphabets()))
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1)))
    text = "".join(rng.choices(alphabet, k=MILLION))
    assert _cpu(redact, text) < 1.0, rule_id


def test_every_builtin_quantifier_is_bounded():
    """No built-in pattern has an unbounded repeat (*, +, {n,}): the root of quadratic scans."""
    from re import _parser as parser  # the stdlib's own parser, to walk the patterns

    from menace.redaction import RULES

    def walk(items):
        for op, arg in items:
            if op in (parser.MAX_REPEAT, parser.MIN_REPEAT, parser.POSSESSIVE_REPEAT):
                assert arg[1] != parser.MAXREPEAT and arg[1] <= 65_536, (op, arg)
                walk(arg[2])
            elif op is parser.SUBPATTERN:
                walk(arg[3])
            elif op is parser.BRANCH:
                for branch in arg[1]:
                    walk(branch)
            elif op in (parser.ASSERT, parser.ASSERT_NOT, parser.ATOMIC_GROUP):
                walk(arg[1] if op is not parser.ATOMIC_GROUP else arg)

    for rule in RULES:
        walk(parser.parse(rule.regex))


# ---------------------------------------------------------------------------------------------
# Item 2: tags are redacted everywhere they go
# ---------------------------------------------------------------------------------------------


def journaled(bus: UnifiedEventBus) -> list[tuple[str, dict]]:
    """Every event in the bus's journal, by replaying it to a fresh subscriber."""
    got: list[tuple[str, dict]] = []

    def collect(topic, payload):
        got.append((topic, payload))

    bus.subscribe("*", collect)
    try:
        bus.replay()
    finally:
        bus.unsubscribe("*", collect)
    return got


def _raw(folder: Path, stem: str) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.glob(stem + "*")) if p.is_file())


def test_secret_tags_never_reach_the_key_tags_index_or_journal(tmp_path):
    token = "ghp_" + fake(ALNUM, 36)
    password = fake(ALNUM, 14)
    bus = UnifiedEventBus(tmp_path / "events.db")
    delivered = []
    bus.subscribe("*", lambda topic, payload: delivered.append(json.dumps(payload)))
    mm = MenaceMemoryManager(tmp_path / "mem.db", event_bus=bus)
    gpt = GPTMemory(mm)
    gpt.log_interaction("deploy?", "done", tags=[token, f"password={password}", "ops"])
    entry = mm.latest(1)[0]
    assert token not in entry.key and password not in entry.key
    assert entry.key == "gpt:[REDACTED]"
    assert entry.tags == ["gpt", "[REDACTED]", "password=[REDACTED]", "ops"]
    assert mm.search(token) == [] and mm.search(password) == []
    # Asking by the secret tag still finds it: lookups are redacted the same way.
    assert [i.prompt for i in gpt.interactions([token])] == ["deploy?"]
    assert gpt.fetch_context([f"password={password}"]).startswith("Prompt: deploy?")
    assert all(token not in e and password not in e for e in delivered)
    replayed = [json.dumps(p) for _, p in journaled(bus)]
    assert replayed and all(token not in e and password not in e for e in replayed)
    gpt.summarize(token, keep_recent=0)
    mm.close()
    bus.close()
    for stem in ("mem.db", "events.db"):
        raw = _raw(tmp_path, stem)
        assert token.encode() not in raw, stem
        assert password.encode() not in raw, stem


def test_redacted_tags_that_collide_are_kept_once(mm_bus):
    mm, _ = mm_bus
    gpt = GPTMemory(mm)
    one, two = "ghp_" + fake(ALNUM, 36), "ghp_" + fake(ALNUM, 36)
    gpt.log_interaction("q", "a", tags=[one, two, "x"])
    assert mm.latest(1)[0].tags == ["gpt", "[REDACTED]", "x"]


@pytest.fixture
def mm_bus(tmp_path):
    bus = UnifiedEventBus(tmp_path / "events.db")
    mm = MenaceMemoryManager(tmp_path / "mem.db", event_bus=bus)
    yield mm, bus
    mm.close()
    bus.close()


# ---------------------------------------------------------------------------------------------
# Item 5: deleting an interaction removes it everywhere
# ---------------------------------------------------------------------------------------------


def rare_word(n: int = 14, letters: str = "jqxzvk") -> str:
    """A word of letters that ordinary text and hex never use together, so its bytes are unique."""
    return "".join(RNG.choice(letters) for _ in range(n))


def _fragments(word: str, size: int = 6) -> list[bytes]:
    # The full-text index stores terms prefix-compressed, so look for every piece of the word.
    return [word[i : i + size].encode() for i in range(len(word) - size + 1)]


def _checkpointed_raw(folder: Path, stem: str) -> bytes:
    conn = sqlite3.connect(folder / stem)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return _raw(folder, stem)


def test_retention_removes_deleted_words_from_the_index_the_file_and_the_journal(tmp_path, sqlite_default):
    bus = UnifiedEventBus(tmp_path / "events.db")
    mm = MenaceMemoryManager(tmp_path / "mem.db", event_bus=bus)
    gpt = GPTMemory(mm, retention=RetentionPolicy(max_per_tag=1))
    doomed = [rare_word() for _ in range(6)]
    big = " ".join(rare_word() for _ in range(900))  # ~13 kB: spills onto overflow pages
    for i in range(120):  # enough rows for the index to merge segments
        gpt.log_interaction(f"filler question {i} about pathways", f"filler answer {i}", tags=["noise"])
    gpt.log_interaction(f"please remember {doomed[0]} {doomed[1]}", f"noted {doomed[2]}", tags=["t"])
    gpt.log_interaction(f"and {doomed[3]} {big}", f"also {doomed[4]} {doomed[5]}", tags=["t"])
    ids_before = [e.id for e in mm.latest(2)]
    mm.query_vector("please remember", limit=3)  # the embedding cache now holds the rows too
    kept_word = rare_word(letters="wyfgbm")  # no piece in common with the doomed words
    gpt.log_interaction(f"keep {kept_word}", "kept answer", tags=["t"])
    assert gpt.apply_retention() == 2 + 119  # per tag: only the newest interaction stays

    assert [i.prompt for i in gpt.search(kept_word)] == [f"keep {kept_word}"]  # the index still works
    for word in doomed:
        assert mm.search(word) == []
    journal_ids = {p["memory_id"] for t, p in journaled(bus) if t == "memory:new"}
    assert not journal_ids & set(ids_before)
    assert len(journal_ids) == 2  # the kept interactions' events are still there

    # As left by delete() (it truncates the WALs itself), then after another checkpoint.
    for raw_of in (_raw, _checkpointed_raw):
        raw_mem, raw_events = raw_of(tmp_path, "mem.db"), raw_of(tmp_path, "events.db")
        assert kept_word.encode() in raw_mem  # the check below can see words at all
        for word in doomed + big.split()[:50]:
            for piece in _fragments(word):
                assert piece not in raw_mem, ("mem", raw_of.__name__, word, piece)
                assert piece not in raw_events, ("events", raw_of.__name__, word, piece)
    mm.close()
    bus.close()


@pytest.fixture(params=["sqlite default", "secure_delete off by default"])
def sqlite_default(request, monkeypatch):
    """Also run as on an SQLite built with secure_delete off (most builds but Debian's)."""
    if request.param != "sqlite default":
        import menace.storage as storage

        real = storage.connect

        def connect_insecurely(path):
            conn = real(path)
            conn.execute("PRAGMA secure_delete=OFF")
            return conn

        monkeypatch.setattr(storage, "connect", connect_insecurely)
    return request.param


def test_deleting_old_entries_among_many_leaves_no_trace_in_the_file(tmp_path, sqlite_default):
    """Old entries, merged deep into the index and sharing pages with kept rows, deleted."""
    mm = MenaceMemoryManager(tmp_path / "mem.db")
    doomed = [rare_word() for _ in range(4)]
    mm.store("old", f"first {doomed[0]} {doomed[1]}")
    mm.store("old", f"second {doomed[2]} {doomed[3]}")
    for i in range(400):  # the index merges the old entries into larger segments
        mm.store(f"k{i % 9}", f"kept entry {i} " + rare_word(8, "wyfgbm"))
    old = [e.id for e in mm.query("old")]
    assert mm.delete(old) == 2
    assert mm.count() == 400
    raw = _raw(tmp_path, "mem.db")
    for word in doomed:
        for piece in _fragments(word):
            assert piece not in raw, (word, piece)
    mm.close()


def test_delete_removes_embeddings_of_the_deleted_text(tmp_path):
    mm = MenaceMemoryManager(tmp_path / "mem.db")
    mm.store("a", "alpha text to embed")
    mm.store("b", "beta text to keep")
    mm.query_vector("text", limit=2)
    assert mm.embedding_cache_size() >= 2
    doomed = mm.query("a")[0].id
    before = mm.embedding_cache_size()
    assert mm.delete([doomed]) == 1
    assert mm.embedding_cache_size() == before - 1
    mm.close()


def test_delete_without_a_bus_or_without_a_journal_works(tmp_path):
    for bus in (None, UnifiedEventBus()):
        mm = MenaceMemoryManager(tmp_path / f"mem{bus is None}.db", event_bus=bus)
        mm.store("k", "some words")
        assert mm.delete([mm.latest(1)[0].id]) == 1
        assert mm.count() == 0
        mm.close()


def test_bus_forget_deletes_only_the_named_events(tmp_path):
    bus = UnifiedEventBus(tmp_path / "events.db")
    for i in (1, 2, 3):
        bus.publish("memory:new", {"memory_id": i, "data": f"text {i}"})
    bus.publish("code:new", {"code_id": 2, "code": "x"})
    assert bus.forget("memory:new", "memory_id", [2, 3, 99]) == 2
    remaining = [(t, p.get("memory_id", p.get("code_id"))) for t, p in journaled(bus)]
    assert remaining == [("memory:new", 1), ("code:new", 2)]
    assert bus.forget("memory:new", "memory_id", []) == 0
    with pytest.raises(ValueError, match="field"):
        bus.forget("memory:new", "memory_id'; DROP TABLE events; --", [1])
    with pytest.raises(ValueError, match="ids"):
        bus.forget("memory:new", "memory_id", ["1"])
    bus.close()
    assert UnifiedEventBus().forget("memory:new", "memory_id", [1]) == 0


def test_documentation_states_the_rule_sources_limits_and_deletion():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "gpt_memory.md").read_text()
    for phrase in ("gitleaks", "detect-secrets", "tags", "cannot", "secure_delete", "journal"):
        assert phrase in doc, phrase
    assert re.search(r"linear", doc)
