"""Secret redaction: one table of rules and a :func:`redact` that runs in linear time.

Where the rules come from
    Most rows are ports of the default rule set of gitleaks (``config/gitleaks.toml``,
    MIT licence, https://github.com/gitleaks/gitleaks); the row keeps the gitleaks rule
    id. Others follow detect-secrets' plugins (Apache-2.0,
    https://github.com/Yelp/detect-secrets): the keyword detector, basic-auth URLs,
    private keys, Discord and Telegram tokens. A few are Menace's own (marked
    ``menace``). A maintained library was weighed first: detect-secrets is a
    line-oriented scanner with verification calls over the network, a process-global
    settings object and unbounded patterns (its basic-auth pattern alone is quadratic
    on ``://`` repeated); gitleaks is a Go binary. Neither redacts a Python string in
    bounded time, so the rules are ported here.

How it stays linear
    A rule runs only when one of its keywords occurs in the lower-cased text (as in
    gitleaks). Every pattern starts with a literal, so ``re`` finds candidates with
    its fast literal search; every quantifier has an upper bound (a test walks each
    pattern to check); and a rule whose body could be re-scanned from each position
    of a long run carries a look-behind right after its literal that refuses a start
    glued to a preceding token character, so a run is scanned once, not once per
    position. Case-insensitive rules run against the lower-cased copy of the text,
    which keeps the literal search fast and the positions the same.

What a rule redacts
    The named groups starting with ``secret`` when the pattern has them (the value
    after ``password=``, say), else the whole match. Overlapping findings merge into
    one ``[REDACTED]``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

REDACTED = "[REDACTED]"

#: Characters a token may be glued to; a token rule refuses to start right after one.
_GLUE = "A-Za-z0-9_-"
_GLUE_LOWER = "a-z0-9_-"


def _start(prefix: str, glue: str = _GLUE) -> str:
    """``prefix`` as the start of a token: the literal first (fast to find), then a
    fixed-width look-behind refusing a start glued to a preceding token character."""
    p = re.escape(prefix)
    return rf"{p}(?<![{glue}]{p})"


@dataclass(frozen=True)
class SecretRule:
    """One kind of secret.

    ``regex`` is matched against the text, or against its lower-cased copy when
    ``lowercase`` is true (then it is written in lower case). ``keywords`` are
    lower-case literals: the rule runs only if one of them occurs in the lower-cased
    text. ``min_entropy`` (bits per character) and ``check`` (a predicate on the
    secret and the match) drop findings that are unlikely to be secrets. ``lead`` is
    for a pattern anchored on a literal inside the secret: that many characters
    before the match, checked by the pattern's look-behind, are redacted with it.
    """

    id: str
    source: str
    regex: str
    keywords: tuple[str, ...]
    lowercase: bool = False
    min_entropy: float = 0.0
    check: Callable[[str, re.Match[str]], bool] | None = None
    lead: int = 0
    #: The compiled pattern the scanner runs (on the lower-cased text when ``lowercase``).
    scanner: re.Pattern[str] = field(init=False, repr=False, compare=False)
    #: The same rule as a pattern on the original text (``re.IGNORECASE`` when ``lowercase``).
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    #: Numbers of the groups to redact; empty: the whole match.
    groups: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        scanner = re.compile(self.regex)
        pattern = re.compile(self.regex, re.IGNORECASE) if self.lowercase else scanner
        groups = tuple(sorted(n for name, n in scanner.groupindex.items() if name.startswith("secret")))
        object.__setattr__(self, "scanner", scanner)
        object.__setattr__(self, "pattern", pattern)
        object.__setattr__(self, "groups", groups)


class Finding(NamedTuple):
    """One secret found: the rule that found it and its span in the text."""

    rule_id: str
    start: int
    end: int


# -- checks ---------------------------------------------------------------------------------


def entropy(text: str) -> float:
    """Shannon entropy of ``text`` in bits per character (0 for empty text)."""
    n = len(text)
    if n == 0:
        return 0.0
    # log2(n) - sum(c * log2(c)) / n over the character counts c: one pass in C.
    return math.log2(n) - sum(c * math.log2(c) for c in Counter(text).values() if c > 1) / n


_PLACEHOLDER = re.compile(
    r"(?i)(?:true|false|null|none|nil|undefined|empty|yes|no|0|1|\*+|\.{3}|x+|redacted|\[redacted\]"
    r"|password|passwd|pwd|pass|secret|token|key|api_key|apikey"
    # a type annotation: "str", "str) -> bool:", "Optional[str] = None", "Any = None"
    r"|(?:str|string|int|bool|bytes|any|object|optional|secretstr|typing\.\w+)(?:[ \t]*(?:[\[\]|),=:]|->).*)?"
    r"|(?:\$\{|\{\{|\$\(|%\(|<%|<\w|os\.environ|os\.getenv|getenv\(|process\.env|getpass|input\().*)"
)


def is_placeholder(value: str) -> bool:
    """Whether an assigned value is plainly not a secret: a literal such as ``None`` or
    ``true``, a type (``str``, ``Optional[str]``), or a reference (``${DB_PASSWORD}``,
    ``{{ .Values.pw }}``, ``os.environ[...]``, ``<password>``)."""
    return _PLACEHOLDER.fullmatch(value.strip().strip("\"'`;,")) is not None


def _not_placeholder(value: str, match: re.Match[str]) -> bool:
    return not is_placeholder(value)


def _not_a_path(value: str, match: re.Match[str]) -> bool:
    # A bare PWD is the shell's working directory: PWD=/home/alice is no password
    # (MYSQL_PWD=/x is one).
    bare = match.start() == 0 or match.string[match.start() - 1] not in "_.-"
    return not is_placeholder(value) and not (bare and value.lstrip("\"'`").startswith(("/", "~", "$")))


#: Names ending in "key" that hold identifiers, not secrets (after gitleaks' allowlist).
_KEY_NOT_SECRET = re.compile(
    r"(?:primary|foreign|sort|partition|range|hash|cache|bucket|public|pub|hot|idx|index|natural"
    r"|schema|sequence|lookup|row|unique|composite|object|s3|registry|routing|shard|group|order"
    r"|dedup|dedupe|idempotency|translation|i18n|message|msg|config|setting|redis|dict|map|entry"
    r"|item|field|column|table|search|lock|namespace|label|metric|query|cursor|page|cluster|node)"
    r"[_.-]?key$"
)


def is_identifier_key(name: str) -> bool:
    """Whether a name ending in "key" names an identifier (``primary_key``, ``sort_key``,
    ``MSG_KEY``), whose value redaction leaves alone."""
    return _KEY_NOT_SECRET.search(name.lower()) is not None


#: What may stand right before "key" in a secret key's name (detect-secrets' denylist).
_KEY_COMPOUND = re.compile(
    r"(?:[_.-]|api|app|auth|access|secret|private|priv|service|account|client|master|signing"
    r"|license|consumer|session|encryption|subscription|storage|webhook|ssh|hmac|jwt|shared|db"
    r"|database|application|crypt)key$"
)


def _secret_key_value(value: str, match: re.Match[str]) -> bool:
    """A secret key: a ``*_key`` or compound name (``apikey``) that is no identifier's
    (``primary_key``), and a value of at least 8 characters."""
    if len(value) < 8 or is_placeholder(value):
        return False
    # Both patterns end in "key$": searched in the 40 characters before the name's "key".
    lo, hi = max(0, match.start() - 40), match.start() + 3
    return (
        _KEY_COMPOUND.search(match.string, lo, hi) is not None
        and _KEY_NOT_SECRET.search(match.string, lo, hi) is None
    )


def _token_like(value: str, match: re.Match[str]) -> bool:
    """A token, not a word: it has a digit or a punctuation character."""
    return any(c.isdigit() or c in "._~+/-=" for c in value)


def _has_digit_and_letter(value: str, match: re.Match[str]) -> bool:
    return (
        any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
        and not is_placeholder(value)
    )


def _generic_value(value: str, match: re.Match[str]) -> bool:
    # gitleaks' generic-api-key allowlist: only letters and _.- is an identifier, not a key.
    return re.fullmatch(r"[A-Za-z_.-]+", value) is None and not is_placeholder(value)


def _decodes_to_userpass(value: str, match: re.Match[str]) -> bool:
    """``Basic <base64>`` credentials decode to ``user:password``."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return ":" in text and text.isprintable()


# -- the table --------------------------------------------------------------------------------
# Each row: rule id, source, pattern, keywords. Grouped by family; within a family by name.

# Assignments: a name that ends in a secret word, an operator, a value. The name must end
# at the word ("password_hash" is not a password). Written for the lower-cased text.
_NAME_END = r"(?![a-z0-9_.-])"
_OPERATOR = r"[\"'\])]{0,2}[ \t]{0,5}(?:=>|:=|\?=|={1,3}|:(?!:))[ \t]{0,5}"
_QUOTED = (
    r"\"(?P<secret_dq>(?:[^\"\\\n]|\\.){1,4096}+)\""
    r"|'(?P<secret_sq>(?:[^'\\\n]|\\.){1,4096}+)'"
    r"|`(?P<secret_bq>[^`\n]{1,4096}+)`"
)
_YAML_BLOCK = r"[|>][-+]?[ \t]{0,5}\r?\n(?P<secret_block>(?:[ \t]{1,64}[^\n]{1,1024}+\n?){1,20}+)"
_XML = r">(?P<secret_xml>[^<\n]{1,1024}+)</"
#: A passphrase may have spaces: the rest of the line is the value.
_PHRASE = r"(?P<secret>\S[^\n]{0,1023}+)"
#: A token has none: it ends at whitespace, quotes, brackets, ``,;&``.
_TOKEN_VALUE = r"(?P<secret>[^\s\"'`,;<>(){}\[\]&]{1,1024}+)"


def _assignment(name: str, value: str) -> str:
    return rf"(?:{name}){_NAME_END}(?:{_XML}|{_OPERATOR}(?:{_QUOTED}|{_YAML_BLOCK}|{value}))"


# gitleaks' generic-api-key, split per keyword so that each pattern starts with a literal.
# Its "," operator counts only after a quote ("password", "x"): in prose "token, <uuid>"
# is a list, not an assignment.
_GENERIC_TAIL = (
    r"[ \t\w.-]{0,20}+[ \t'\"]{0,3}+(?:=>|:{1,3}=|\?=|\|\||=|:|>|(?<=[\"'`]),)[ \t'\"`=]{0,5}+"
    r"(?P<secret>[\w.=-]{10,150}+|[a-z0-9][a-z0-9+/]{11,150}+={0,3})"
)

# gitleaks' vendor rules anchored on a keyword ("twilio ... = value"), one pattern each.
# Their value shapes differ (hex, base62, UUIDs); one shape covers them all: 12-300
# token characters with a letter and a digit.
_VENDOR_TAIL = (
    r"[ \t\w.-]{0,20}+[ \t'\"]{0,3}+(?:=>|:{1,3}=|\?=|\|\||=|:|>|(?<=[\"'`]),)[ \t'\"`=]{0,5}+"
    r"(?P<secret>[a-z0-9_.=+/:%-]{12,300}+)"
)
#: keyword -> the gitleaks rule ids it stands for.
_VENDOR_KEYWORDS: dict[str, str] = {
    "adafruit": "adafruit-api-key",
    "adobe": "adobe-client-id",
    "airtable": "airtable-api-key",
    "algolia": "algolia-api-key",
    "alibaba": "alibaba-secret-key",
    "asana": "asana-client-id asana-client-secret",
    "atlassian": "atlassian-api-token",
    "confluence": "atlassian-api-token",
    "jira": "atlassian-api-token",
    "beamer": "beamer-api-token",
    "bitbucket": "bitbucket-client-id bitbucket-client-secret",
    "bittrex": "bittrex-access-key bittrex-secret-key",
    "meraki": "cisco-meraki-api-key",
    "cloudflare": "cloudflare-api-key cloudflare-global-api-key",
    "codecov": "codecov-access-token",
    "cohere": "cohere-api-token",
    "coinbase": "coinbase-access-token",
    "confluent": "confluent-access-token confluent-secret-key",
    "contentful": "contentful-delivery-api-token",
    "datadog": "datadog-access-token",
    "dnkey": "defined-networking-api-token",
    "discord": "discord-api-token discord-client-id discord-client-secret",
    "droneci": "droneci-access-token",
    "dropbox": "dropbox-api-token dropbox-long-lived-api-token",
    "etsy": "etsy-access-token",
    "facebook": "facebook-secret",
    "fastly": "fastly-api-token",
    "finicity": "finicity-api-token finicity-client-secret",
    "finnhub": "finnhub-access-token",
    "flickr": "flickr-access-token",
    "freshbooks": "freshbooks-access-token",
    "gitter": "gitter-access-token",
    "gocardless": "gocardless-api-token",
    "heroku": "heroku-api-key",
    "hubspot": "hubspot-api-key",
    "intercom": "intercom-api-key",
    "jfrog": "jfrog-api-key jfrog-identity-token",
    "artifactory": "jfrog-api-key jfrog-identity-token",
    "bintray": "jfrog-api-key jfrog-identity-token",
    "kraken": "kraken-access-token",
    "kucoin": "kucoin-access-token kucoin-secret-key",
    "launchdarkly": "launchdarkly-access-token",
    "linear": "linear-client-secret",
    "linkedin": "linkedin-client-id linkedin-client-secret",
    "linked_in": "linkedin-client-id linkedin-client-secret",
    "looker": "looker-client-id looker-client-secret",
    "mailchimp": "mailchimp-api-key",
    "mailgun": "mailgun-signing-key",
    "mapbox": "mapbox-api-token",
    "mattermost": "mattermost-access-token",
    "messagebird": "messagebird-api-token messagebird-client-id",
    "message_bird": "messagebird-api-token messagebird-client-id",
    "netlify": "netlify-access-token",
    "newrelic": "new-relic-user-api-id",
    "new_relic": "new-relic-user-api-id",
    "new-relic": "new-relic-user-api-id",
    "nytimes": "nytimes-access-token",
    "okta": "okta-access-token",
    "plaid": "plaid-client-id plaid-secret-key",
    "privateai": "privateai-api-token",
    "private_ai": "privateai-api-token",
    "rapidapi": "rapidapi-access-token",
    "sendbird": "sendbird-access-id sendbird-access-token",
    "sentry": "sentry-access-token",
    "contribsys": "sidekiq-secret",
    "snyk": "snyk-api-token",
    "sonar": "sonar-api-token",
    "squarespace": "squarespace-access-token",
    "sumo": "sumologic-access-id sumologic-access-token",
    "telegram": "telegram-bot-api-token",
    "travis": "travisci-access-token",
    "twitch": "twitch-api-token",
    "twitter": "twitter-api-key twitter-api-secret twitter-access-token twitter-access-secret",
    "typeform": "typeform-api-token",
    "yandex": "yandex-access-token yandex-aws-access-token",
    "zendesk": "zendesk-secret-key",
    # detect-secrets' vendor keywords of the same shape
    "softlayer": "detect-secrets SoftlayerDetector",
    "cloudant": "detect-secrets CloudantDetector",
}

R = SecretRule
_PEM_NAME = r"[ a-z0-9_-]{0,100}private key(?: block)?-----"

RULES: tuple[SecretRule, ...] = (
    # -- private keys ---------------------------------------------------------------------------
    # gitleaks private-key / detect-secrets PrivateKeyDetector. The body up to the next
    # "-----" is redacted (the BEGIN/END lines stay legible); a block pasted without its
    # END line loses its base64 lines. Any "\n" escapes (a key inside JSON) are body.
    R("private-key", "gitleaks",
      rf"-----begin{_PEM_NAME}(?P<secret>(?:[^-]|-(?!----)){{1,65536}}+(?=-----end)"
      r"|[a-z0-9+/=\s\\]{1,65536}+)",
      ("-----begin",), lowercase=True),
    R("putty-private-key", "detect-secrets",
      r"private-lines:[ \t]{0,5}[0-9]{1,4}[ \t]{0,5}\r?\n(?P<secret>[a-z0-9+/=\r\n]{1,65536}+)",
      ("private-lines",), lowercase=True),
    R("age-secret-key", "gitleaks", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
      ("age-secret-key-1",)),
    # -- credentials in URLs and HTTP headers ---------------------------------------------------
    # detect-secrets BasicAuthDetector (also gitleaks sidekiq-sensitive-url): scheme://user:PASS@host.
    # The password may hold "@": it runs to the last "@" before the host.
    R("url-credentials", "detect-secrets",
      r"://[^\s:/?#@\[\]\"'<>]{0,256}+:(?P<secret>[^\s/?#\"'<>]{1,256})@(?=[A-Za-z0-9\[._-])",
      ("://",)),
    # gitleaks curl-auth-header, for any Authorization header, not only curl's.
    R("authorization-header", "gitleaks",
      r"authorization[\"']?[ \t]{0,5}[:=][ \t]{0,5}[\"']?"
      r"(?:(?:basic|bearer|token|digest|negotiate|ntlm|api-?key|sso-key)[ \t]{1,5})?"
      r"(?P<secret>[^\s\"'`,;]{1,4096}+)",
      ("authorization",), lowercase=True),
    R("bearer-token", "menace",
      _start("bearer", "a-z0-9_") + r"[ \t]{1,5}(?P<secret>[a-z0-9._~+/-]{8,4096}+={0,3})",
      ("bearer",), lowercase=True, check=_token_like),
    R("basic-auth", "menace",
      _start("basic", "a-z0-9_") + r"[ \t]{1,5}(?P<secret>[a-z0-9+/]{8,4096}+={0,2})",
      ("basic",), lowercase=True, check=_decodes_to_userpass),
    # gitleaks curl-auth-user: curl -u user:PASS
    R("curl-auth-user", "gitleaks",
      r"-(?<![A-Za-z0-9-]-)(?:u|-user)(?:=|[ \t]{1,5})[\"']?[^\s\"':=]{1,256}+:(?P<secret>[^\s\"']{1,256}+)",
      ("-u", "--user")),
    R("netrc", "menace",
      r"machine[ \t]{1,20}\S{1,256}+[ \t\r\n]{1,20}login[ \t]{1,20}\S{1,256}+[ \t\r\n]{1,20}"
      r"password[ \t]{1,20}(?P<secret>\S{1,256}+)",
      ("machine",), lowercase=True),
    R("nuget-config-password", "gitleaks",
      r"<add key=\"(?:cleartext)?password\"[ \t]{0,10}value=\"(?P<secret>[^\"]{1,1024}+)\"",
      ("<add key=",), lowercase=True),
    # Signed URLs: Azure SAS "sig=", AWS and GCS "X-Amz-Signature=" / "X-Goog-Signature=".
    R("azure-sas-signature", "menace",
      r"[?&;](?:sig|signature|x-amz-signature|x-goog-signature)=(?P<secret>[a-z0-9%+/=_.-]{16,1024}+)",
      ("sig=", "signature="), lowercase=True),
    # -- cloud providers and infrastructure -------------------------------------------------------
    R("aws-access-token", "gitleaks",  # AKIA: long-term keys; ASIA: temporary (STS) keys
      r"A(?<![A-Za-z0-9]A)(?:3T[A-Z0-9]|KIA|SIA|BIA|CCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
      ("a3t", "akia", "asia", "abia", "acca")),
    R("aws-amazon-bedrock-api-key-long-lived", "gitleaks", _start("ABSK") + r"[A-Za-z0-9+/]{109,269}+={0,2}",
      ("absk",)),
    R("aws-amazon-bedrock-api-key-short-lived", "gitleaks",
      r"bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/=%&_.-]{0,8192}+", ("bedrock-api-key-",)),
    R("gcp-api-key", "gitleaks", _start("AIza") + r"[A-Za-z0-9_-]{30,64}+", ("aiza",)),
    R("azure-ad-client-secret", "gitleaks",
      r"Q~(?<=[A-Za-z0-9_~.]{3}[0-9]Q~)(?<![A-Za-z0-9_~.]{4}[0-9]Q~)[A-Za-z0-9_~.-]{31,34}", ("q~",),
      lead=4),
    R("alibaba-access-key-id", "gitleaks", _start("LTAI") + r"[A-Za-z0-9]{20}", ("ltai",)),
    R("digitalocean-pat", "gitleaks",  # also digitalocean-access-token, -refresh-token
      r"do[opr]_v1_(?<![A-Za-z0-9_-]do[opr]_v1_)[a-f0-9]{64}", ("doo_v1_", "dop_v1_", "dor_v1_")),
    R("heroku-api-key-v2", "gitleaks", _start("HRKU-AA") + r"[A-Za-z0-9_-]{58}", ("hrku-aa",)),
    R("flyio-access-token", "gitleaks", _start("fo1_") + r"[A-Za-z0-9_-]{43}", ("fo1_",)),
    R("flyio-access-token", "gitleaks",
      r"fm(?:1[ar]|2)_(?<![A-Za-z0-9_-]fm1[ar]_)[A-Za-z0-9+/]{100,4096}+={0,3}", ("fm1", "fm2_")),
    R("cloudflare-origin-ca-key", "gitleaks", _start("v1.0-") + r"[a-f0-9]{24}-[a-f0-9]{146}", ("v1.0-",)),
    R("databricks-api-token", "gitleaks", _start("dapi") + r"[a-f0-9]{32}(?:-[0-9])?", ("dapi",)),
    R("dynatrace-api-token", "gitleaks", _start("dt0c01.") + r"[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}",
      ("dt0c01.",)),
    R("hashicorp-tf-api-token", "gitleaks",
      r"\.atlasv1\.(?<=[A-Za-z0-9]{14}\.atlasv1\.)[A-Za-z0-9_=-]{60,70}", ("atlasv1",), lead=14),
    R("vault-service-token", "gitleaks", _start("hvs.") + r"[A-Za-z0-9_-]{90,120}", ("hvs.",)),
    R("vault-service-token", "gitleaks", _start("s.", "A-Za-z0-9_.-") + r"[A-Za-z0-9]{24}(?![A-Za-z0-9])",
      ("s.",), min_entropy=3.5),
    R("vault-batch-token", "gitleaks", _start("hvb.") + r"[A-Za-z0-9_-]{138,300}+", ("hvb.",)),
    R("openshift-user-token", "gitleaks", _start("sha256~") + r"[A-Za-z0-9_-]{43}", ("sha256~",)),
    R("yandex-api-key", "gitleaks", _start("AQVN") + r"[A-Za-z0-9_-]{35,38}", ("aqvn",)),
    R("scalingo-api-token", "gitleaks", _start("tk-us-") + r"[A-Za-z0-9_-]{48}", ("tk-us-",)),
    R("planetscale-api-token", "gitleaks",  # also planetscale-oauth-token, -password
      r"pscale_(?:tkn|oauth|pw)_[A-Za-z0-9_=.-]{32,64}+", ("pscale_tkn_", "pscale_oauth_", "pscale_pw_")),
    R("pulumi-api-token", "gitleaks", _start("pul-") + r"[a-f0-9]{40}", ("pul-",)),
    R("doppler-api-token", "gitleaks", r"dp\.pt\.[A-Za-z0-9]{43}", ("dp.pt.",)),
    R("prefect-api-token", "gitleaks", _start("pnu_") + r"[A-Za-z0-9]{36}", ("pnu_",)),
    R("octopus-deploy-api-key", "gitleaks", _start("API-") + r"[A-Z0-9]{26}(?![A-Za-z0-9])", ("api-",)),
    R("harness-api-key", "gitleaks",
      r"at\.(?<=[ps]at\.)[A-Za-z0-9_-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}", ("pat.", "sat."), lead=1),
    R("infracost-api-token", "gitleaks", _start("ico-") + r"[A-Za-z0-9]{32}", ("ico-",)),
    R("clickhouse-cloud-api-secret-key", "gitleaks", _start("4b1d") + r"[A-Za-z0-9]{38}(?![A-Za-z0-9])",
      ("4b1d",)),
    # -- code hosting and package registries --------------------------------------------------------
    R("github-pat", "gitleaks",  # also github-oauth, github-app-token, github-refresh-token
      r"gh[pousr]_(?<![A-Za-z0-9_-]gh[pousr]_)[A-Za-z0-9]{30,255}+", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    R("github-fine-grained-pat", "gitleaks", _start("github_pat_") + r"[A-Za-z0-9_]{60,255}+",
      ("github_pat_",)),
    R("gitlab-pat", "gitleaks",  # and every gitlab-* token with a gl...- prefix
      r"gl(?:pat|ptt|dt|ft|rt|imt|soat|oas|cbt|ffct|agent)-[A-Za-z0-9_.-]{20,300}+",
      ("glpat-", "glptt-", "gldt-", "glft-", "glrt-", "glimt-", "glsoat-", "gloas-", "glcbt-",
       "glffct-", "glagent-")),
    R("gitlab-rrt", "gitleaks", _start("GR1348941") + r"[A-Za-z0-9_-]{20,64}+", ("gr1348941",)),
    R("gitlab-session-cookie", "gitleaks", r"_gitlab_session=(?P<secret>[0-9a-z]{32})",
      ("_gitlab_session=",), lowercase=True),
    R("npm-access-token", "gitleaks", _start("npm_") + r"[A-Za-z0-9]{36}", ("npm_",)),
    R("pypi-upload-token", "gitleaks", _start("pypi-AgE") + r"[A-Za-z0-9_-]{50,4096}+", ("pypi-age",)),
    R("rubygems-api-token", "gitleaks", _start("rubygems_") + r"[a-f0-9]{48}", ("rubygems_",)),
    R("clojars-api-token", "gitleaks", r"clojars_[a-z0-9]{60}", ("clojars_",), lowercase=True),
    R("artifactory-api-key", "gitleaks", _start("AKCp") + r"[A-Za-z0-9]{69}", ("akcp",)),
    R("artifactory-reference-token", "gitleaks", _start("cmVmd") + r"[A-Za-z0-9]{59}", ("cmvmd",)),
    R("sonar-api-token", "gitleaks", r"sq[upa]_(?<![A-Za-z0-9_-]sq[upa]_)[a-f0-9]{40}", ("squ_", "sqp_", "sqa_")),
    R("sourcegraph-access-token", "gitleaks", _start("sgp_") + r"(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}",
      ("sgp_",)),
    R("readme-api-token", "gitleaks", _start("rdme_") + r"[a-z0-9]{70}", ("rdme_",)),
    R("linear-api-key", "gitleaks", _start("lin_api_") + r"[A-Za-z0-9]{40}", ("lin_api_",)),
    R("postman-api-token", "gitleaks", _start("PMAK-") + r"[A-Za-z0-9]{24}-[A-Za-z0-9]{34}", ("pmak-",)),
    # -- AI services ------------------------------------------------------------------------------
    R("openai-api-key", "gitleaks",  # sk-, sk-proj-, sk-svcacct-; also anthropic-api-key and -admin-api-key
      _start("sk-") + r"[A-Za-z0-9_-]{16,400}+", ("sk-",)),
    R("huggingface-access-token", "gitleaks", _start("hf_") + r"[A-Za-z0-9]{34,64}+", ("hf_",)),
    R("huggingface-organization-api-token", "gitleaks", _start("api_org_") + r"[A-Za-z0-9]{34}",
      ("api_org_",)),
    R("perplexity-api-key", "gitleaks", _start("pplx-") + r"[A-Za-z0-9]{48}", ("pplx-",)),
    R("1password-service-account-token", "gitleaks", _start("ops_eyJ") + r"[A-Za-z0-9+/]{250,8192}+={0,3}",
      ("ops_eyj",)),
    R("1password-secret-key", "gitleaks",
      _start("A3-") + r"[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}",
      ("a3-",)),
    # -- chat, mail, payments and other services -----------------------------------------------------
    R("slack-token", "gitleaks",  # slack-bot-, -user-, -legacy-*, -config-access-, -config-refresh-token
      r"xox[a-z](?<![A-Za-z0-9_-]xox[a-z])(?:\.xox[a-z])?-[A-Za-z0-9-]{10,400}+",
      ("xoxa", "xoxb", "xoxe", "xoxo", "xoxp", "xoxr", "xoxs")),
    R("slack-app-token", "gitleaks", r"xapp-[0-9]-[a-z0-9-]{10,400}+", ("xapp",), lowercase=True),
    R("slack-webhook-url", "gitleaks",
      r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[a-z0-9+/]{20,200}+)",
      ("hooks.slack.com",), lowercase=True),
    R("microsoft-teams-webhook", "gitleaks",
      r"webhook\.office\.com/webhookb2/(?P<secret>[a-z0-9@/-]{40,400}+)", ("webhook.office.com",),
      lowercase=True),
    # detect-secrets DiscordBotTokenDetector: the signed part after the (public) user id.
    R("discord-bot-token", "detect-secrets",
      r"\.(?:(?<=[MNO][A-Za-z0-9_-]{23}\.)|(?<=[MNO][A-Za-z0-9_-]{24}\.)|(?<=[MNO][A-Za-z0-9_-]{25}\.))"
      r"[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}", (".",)),
    # gitleaks telegram-bot-api-token / detect-secrets TelegramBotTokenDetector: the part after "<bot id>:".
    R("telegram-bot-api-token", "gitleaks", r":(?<=[0-9]{5}:)A[A-Za-z0-9_-]{34}", (":a",)),
    R("twilio-api-key", "gitleaks", _start("SK") + r"[0-9a-fA-F]{32}(?![A-Za-z0-9])", ("sk",)),
    R("sendgrid-api-token", "gitleaks", _start("SG.") + r"[A-Za-z0-9=_.-]{66}", ("sg.",)),
    R("sendinblue-api-token", "gitleaks", _start("xkeysib-") + r"[a-f0-9]{64}-[A-Za-z0-9]{16}", ("xkeysib-",)),
    R("mailgun-private-api-token", "gitleaks", _start("key-") + r"[a-f0-9]{32}", ("key-",)),
    R("mailgun-pub-key", "gitleaks", _start("pubkey-") + r"[a-f0-9]{32}", ("pubkey-",)),
    R("mailchimp-api-key", "gitleaks", r"-us(?<=[a-f0-9]{32}-us)[0-9]{1,2}(?![0-9])", ("-us",), lead=32),
    R("stripe-access-token", "gitleaks",
      r"[rs]k_(?<![A-Za-z0-9_-][rs]k_)(?:test|live|prod)_[A-Za-z0-9]{10,255}+",
      ("sk_test", "sk_live", "sk_prod", "rk_test", "rk_live", "rk_prod")),
    R("stripe-webhook-secret", "menace", _start("whsec_") + r"[A-Za-z0-9]{24,64}+", ("whsec_",)),
    R("square-access-token", "gitleaks",  # with detect-secrets' SquareOAuthDetector (sq0csp-)
      _start("sq0") + r"(?:atp|csp)-[A-Za-z0-9_-]{22,60}+", ("sq0atp-", "sq0csp-")),
    R("square-access-token", "gitleaks", _start("EAAA") + r"[A-Za-z0-9_-]{60}", ("eaaa",)),
    R("shopify-access-token", "gitleaks",  # also shopify-custom-access-token, -private-app-, -shared-secret
      _start("shp") + r"(?:at|ca|pa|ss)_[A-Fa-f0-9]{32}", ("shpat_", "shpca_", "shppa_", "shpss_")),
    R("shippo-api-token", "gitleaks", _start("shippo_") + r"(?:live|test)_[A-Fa-f0-9]{40}", ("shippo_",)),
    R("duffel-api-token", "gitleaks", _start("duffel_") + r"(?:test|live)_[A-Za-z0-9_=-]{43}", ("duffel_",)),
    R("easypost-api-token", "gitleaks", _start("EZ") + r"[AT]K[A-Za-z0-9]{54}", ("ezak", "eztk")),
    R("flutterwave-secret-key", "gitleaks",  # also flutterwave-public-key, -encryption-key
      _start("FLW") + r"(?:SECK|PUBK)(?:_TEST)?-[A-Za-z0-9]{12,32}(?:-X)?", ("flwseck", "flwpubk")),
    R("frameio-api-token", "gitleaks", _start("fio-u-") + r"[A-Za-z0-9_=-]{64}", ("fio-u-",)),
    R("adobe-client-secret", "gitleaks", _start("p8e-") + r"[A-Za-z0-9]{32}", ("p8e-",)),
    R("airtable-personnal-access-token", "gitleaks", _start("pat") + r"[A-Za-z0-9]{14}\.[a-f0-9]{64}",
      ("pat",)),
    R("notion-api-token", "gitleaks", _start("ntn_") + r"[0-9]{11}[A-Za-z0-9]{35}", ("ntn_",)),
    R("new-relic-user-api-key", "gitleaks",  # also new-relic-insert-key, -browser-api-token
      _start("NR") + r"(?:AK|II|JS)-[A-Za-z0-9-]{19,40}+", ("nrak-", "nrii-", "nrjs-")),
    R("grafana-api-key", "gitleaks", _start("eyJrIjoi") + r"[A-Za-z0-9]{70,400}+={0,3}", ("eyjrijoi",)),
    R("grafana-cloud-api-token", "gitleaks", _start("glc_") + r"[A-Za-z0-9+/]{32,400}+={0,3}", ("glc_",)),
    R("grafana-service-account-token", "gitleaks", _start("glsa_") + r"[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}",
      ("glsa_",)),
    R("sentry-org-token", "gitleaks", _start("sntrys_eyJ") + r"[A-Za-z0-9+/=_]{50,2048}+", ("sntrys_eyj",)),
    R("sentry-user-token", "gitleaks", _start("sntryu_") + r"[a-f0-9]{64}", ("sntryu_",)),
    R("settlemint-personal-access-token", "gitleaks",  # also -application-, -service-access-token
      _start("sm_") + r"(?:aat|pat|sat)_[A-Za-z0-9]{16}", ("sm_aat", "sm_pat", "sm_sat")),
    R("intra42-client-secret", "gitleaks", _start("s-s4t2") + r"(?:ud|af)-[A-Fa-f0-9]{64}",
      ("s-s4t2ud-", "s-s4t2af-")),
    R("maxmind-license-key", "gitleaks", r"_mmk(?<=[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk)", ("_mmk",),
      lead=36),
    R("authress-service-client-access-key", "gitleaks",
      r"_(?:(?<=sc_)|(?<=ext_)|(?<=scauth_)|(?<=authress_))[A-Za-z0-9]{5,30}\.[A-Za-z0-9]{4,6}\.acc[_-]"
      r"[A-Za-z0-9-]{10,32}\.[A-Za-z0-9+/_=-]{30,120}+",
      ("sc_", "ext_", "scauth_", "authress_")),
    R("plaid-api-token", "gitleaks",
      r"access-(?:sandbox|development|production)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
      ("access-",), lowercase=True),
    R("dropbox-short-lived-api-token", "gitleaks", _start("sl.") + r"[A-Za-z0-9_=.-]{130,1400}+", ("sl.",)),
    R("facebook-page-access-token", "gitleaks", _start("EAA") + r"[MC][A-Za-z0-9]{100,2048}+",
      ("eaam", "eaac")),
    R("facebook-access-token", "gitleaks", r"(?:\||%)(?<=[0-9]{15}[|%])[0-9a-z_-]{27,40}+",
      ("facebook",), lowercase=True, lead=15),
    R("twitter-bearer-token", "gitleaks", r"A{22}[A-Za-z0-9%]{80,100}+", ("a" * 22,)),
    # gitleaks jwt: header "eyJ", payload, signature (empty for an unsigned token).
    R("jwt", "gitleaks",
      _start("eyJ") + r"[A-Za-z0-9_-]{7,4096}+\.[A-Za-z0-9_-]{8,16384}+\.[A-Za-z0-9_\-+/=]{0,4096}+",
      ("eyj",)),
    R("jwt-base64", "gitleaks", _start("ZXlK", "A-Za-z0-9_+/-") + r"[A-Za-z0-9+/_-]{60,20000}+={0,2}",
      ("zxlk",)),
    # Assignments come last: a span a format rule above already found is not checked again.
    # -- assignments (detect-secrets KeywordDetector, widened to any name ending in the word) ---
    # Passwords and secrets may be phrases: the rest of the line is the value.
    R("password-assignment", "detect-secrets",
      _assignment(r"pass(?:w(?:or)?d|phrase|(?<![a-z0-9]pass)|(?<=keypass))", _PHRASE),
      ("pass",), lowercase=True, check=_not_placeholder),
    R("password-assignment", "detect-secrets",
      _assignment(r"pwd(?<![a-z0-9]pwd)", _PHRASE),
      ("pwd",), lowercase=True, check=_not_a_path),
    R("password-assignment", "detect-secrets",
      _assignment(r"contrase(?:ñ|n)a", _PHRASE), ("contrase",), lowercase=True, check=_not_placeholder),
    R("secret-assignment", "detect-secrets", _assignment("secret", _PHRASE),
      ("secret",), lowercase=True, check=_not_placeholder),
    R("token-assignment", "detect-secrets", _assignment("token", _TOKEN_VALUE),
      ("token",), lowercase=True, check=_not_placeholder),
    # "*_key", "*-key", "*.key" and compounds (apikey, accesskey, privatekey, ...): not
    # "monkey", not "key=lambda ...", and not identifier keys (primary_key, sort_key);
    # the check reads the name.
    R("key-assignment", "detect-secrets",
      _assignment(r"key(?<=[a-z_.-]key)", _TOKEN_VALUE),
      ("key",), lowercase=True, check=_secret_key_value),
    *(
        R("generic-api-key", "gitleaks", word + _GENERIC_TAIL, keywords, lowercase=True,
          min_entropy=3.5, check=_generic_value)
        for word, keywords in (
            ("access", ("access",)), ("auth", ("auth",)), ("api", ("api",)),
            ("cred(?:ential|s)", ("credential", "creds")), ("key", ("key",)),
            ("passw(?:or)?d", ("passwd", "password")), ("secret", ("secret",)),
            ("token", ("token",)),
        )
    ),
    *(
        R("vendor-keyword", "detect-secrets" if ids.startswith("detect-secrets") else "gitleaks",
          _start(keyword, "a-z") + _VENDOR_TAIL, (keyword,), lowercase=True,
          check=_has_digit_and_letter)
        for keyword, ids in _VENDOR_KEYWORDS.items()
    ),
)

SECRET_PATTERNS: tuple[re.Pattern[str], ...] = tuple(rule.pattern for rule in RULES)
"""Every rule's regular expression, on the original text. :func:`redact` also applies
each rule's keyword, entropy and context checks, which a bare pattern cannot."""

_RULE_OF_PATTERN = {rule.pattern: rule for rule in RULES}
_KEYWORDS = tuple(sorted({kw for rule in RULES for kw in rule.keywords}))
_CHARS = {kw: frozenset(kw) for kw in _KEYWORDS}
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _lower(text: str) -> str:
    """``text`` lower-cased with every position kept (what the lower-case rules scan)."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters lower-case to two ("İ")
        lowered = text.translate(_ASCII_LOWER)
    return lowered


def _secret_spans(rule: SecretRule, match: re.Match[str]) -> tuple[tuple[int, int], ...]:
    """Where the secret is in a rule's match: the whole (with its lead) or its secret groups."""
    groups = rule.groups
    if not groups:
        return ((max(0, match.start() - rule.lead), match.end()),)
    if match.lastindex in groups:  # the secret group is a pattern's last group
        return (match.span(match.lastindex),)
    return tuple(match.span(g) for g in groups)


def _accepts(rule: SecretRule, value: str, match: re.Match[str]) -> bool:
    """The rule's extra checks on a found value (entropy, its own check)."""
    if rule.min_entropy and entropy(value) < rule.min_entropy:
        return False
    return rule.check is None or rule.check(value, match)


def find_secrets(text: str, rules: Iterable[SecretRule] | None = None) -> list[Finding]:
    """Every secret the rules find in ``text``, in text order (spans may overlap)."""
    if rules is None:
        rules, keywords = RULES, _KEYWORDS
    else:
        rules = tuple(rules)
        keywords = tuple({kw for rule in rules for kw in rule.keywords})
        _CHARS.update((kw, frozenset(kw)) for kw in keywords if kw not in _CHARS)
    lowered = _lower(text)
    if len(lowered) > 1024:
        # A keyword with a character the text lacks is absent: one pass over the text
        # rules out most of the ~250 keyword searches on prose (no "_", "~" or digits).
        chars = set(lowered)
        present = {kw for kw in keywords if _CHARS[kw] <= chars and kw in lowered}
    else:
        present = {kw for kw in keywords if kw in lowered}
    findings: list[Finding] = []
    seen: set[tuple[int, int]] = set()  # a span one rule found is not checked again for another
    for rule in rules:
        if rule.keywords and present.isdisjoint(rule.keywords):
            continue
        for match in rule.scanner.finditer(lowered if rule.lowercase else text):
            for start, end in _secret_spans(rule, match):
                if start >= end or (start, end) in seen or not _accepts(rule, text[start:end], match):
                    continue
                seen.add((start, end))
                findings.append(Finding(rule.id, start, end))
    findings.sort(key=lambda f: (f.start, f.end))
    return findings


def _replace(text: str, findings: list[Finding]) -> str:
    """``text`` with the union of the findings' spans replaced, one marker per merged span."""
    if not findings:
        return text
    out, pos = [], 0
    start, end = findings[0].start, findings[0].end
    for finding in findings[1:]:
        if finding.start <= end:
            end = max(end, finding.end)
            continue
        out += [text[pos:start], REDACTED]
        pos, (start, end) = end, (finding.start, finding.end)
    out += [text[pos:start], REDACTED, text[end:]]
    return "".join(out)


def _redact_match(match: re.Match[str]) -> str:
    """The match with its first group (or, without one, all of it) replaced."""
    if match.re.groups == 0 or match.start(1) < 0:
        return REDACTED
    whole, offset = match.group(0), match.start(0)
    return whole[: match.start(1) - offset] + REDACTED + whole[match.end(1) - offset :]


def redact(text: str, patterns: Iterable[re.Pattern[str]] | None = None) -> str:
    """``text`` with every secret-looking value replaced by ``[REDACTED]``.

    ``patterns`` defaults to every built-in rule. Built-in patterns (members of
    :data:`SECRET_PATTERNS`) run through the linear scanner: 1M characters of any text
    take well under a second. Other patterns are applied after them, one by one, with
    ``re.sub``; a pattern with a group replaces only its first group. Their speed is
    theirs: an unbounded repeat can make them quadratic.
    """
    if patterns is None:
        return _replace(text, find_secrets(text))
    builtin, extra = [], []
    for pattern in patterns:
        rule = _RULE_OF_PATTERN.get(pattern)
        (builtin if rule is not None else extra).append(rule if rule is not None else pattern)
    if builtin:
        text = _replace(text, find_secrets(text, builtin if len(builtin) < len(RULES) else None))
    for pattern in extra:
        text = pattern.sub(_redact_match, text)
    return text
