"""Structural rules of ``shared/``: environment read only in config modules, never an import of ``infra``.

Why: a function bundle ships ``shared/`` without ``infra/`` (so an import of it fails in production
only), and settings read in one place are the ones documented and tested.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from shared.charging.config import adyen_settings, stripe_settings
from shared.config import DEFAULT_ACCOUNT, account_env, account_env_name
from shared.psp.registry import ADAPTERS
from shared.webhooks import config as webhook_config

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
ENV_NAMES = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})
# Read os.environ directly today; its move into a config module is done in a parallel change. Remove the
# entry when that lands (the ratchet test below fails as soon as the file is clean).


def _modules() -> list[Path]:
    return sorted(p for p in SHARED.rglob("*.py") if "__pycache__" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def env_reads(source: str) -> list[int]:
    """Line numbers reading or changing the process environment (``os.environ``, ``getenv``, ``from os import``)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ENV_NAMES:
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(a.name in ENV_NAMES for a in node.names):
            lines.append(node.lineno)
    return lines


def infra_imports(source: str) -> list[int]:
    """Line numbers importing ``infra`` or anything under it, at module level or inside a function."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(n.split(".")[0] == "infra" for n in names):
            lines.append(node.lineno)
    return lines


def test_the_detectors_find_what_they_look_for() -> None:
    src = "import os\nfrom os import getenv\ndef f():\n    return os.environ.get('X')\nx = os.getenv('Y')\n"
    assert sorted(env_reads(src)) == [2, 4, 5]
    assert env_reads("import os\nos.path.join('a')\nenviron = {}\n") == []
    src = "def f():\n    from infra.local.topology import load\nimport infra.bundle\nfrom infrastructure import x\n"
    assert sorted(infra_imports(src)) == [2, 3]


def test_environment_is_read_only_in_config_modules() -> None:
    offenders = {
        _rel(p): env_reads(p.read_text()) for p in _modules() if p.name != "config.py" and env_reads(p.read_text())
    }
    assert offenders == {}, "read settings in a config module (shared/config.py or <package>/config.py)"


def test_shared_never_imports_infra() -> None:
    offenders = {_rel(p): infra_imports(p.read_text()) for p in _modules() if infra_imports(p.read_text())}
    assert offenders == {}, "shared/ ships in every bundle without infra/: pass data in, do not import infra"


def test_the_account_naming_rule_has_one_implementation() -> None:
    """``NAME__<ACCOUNT>`` is built only in shared/config.py (no other f-string appends ``__{...}``)."""
    pattern = re.compile(r"""__\{""")
    offenders = [_rel(p) for p in _modules() if p != SHARED / "config.py" and pattern.search(p.read_text())]
    assert offenders == []


@pytest.mark.parametrize(
    ("account", "name"),
    [(DEFAULT_ACCOUNT, "STRIPE_API_KEY"), ("eu", "STRIPE_API_KEY__EU"), ("eu-2", "STRIPE_API_KEY__EU_2")],
)
def test_account_env_name(account: str, name: str) -> None:
    assert account_env_name("STRIPE_API_KEY", account) == name
    assert account_env("STRIPE_API_KEY", account, {name: "sk"}) == "sk"
    assert account_env("STRIPE_API_KEY", account, {name: ""}) is None


def test_webhooks_and_charging_read_the_same_names_for_an_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS__EU_2", "whsec_eu2_not_a_secret")
    monkeypatch.setenv("STRIPE_API_KEY__EU_2", "sk_test_eu2_not_a_secret")
    monkeypatch.setenv("ADYEN_API_KEY__EU_2", "adyen_eu2")
    monkeypatch.setenv("ADYEN_MERCHANT_ACCOUNT__EU_2", "Merchant_EU2")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRETS", raising=False)
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    hooks = webhook_config.load(ADAPTERS["stripe"], "eu-2")
    assert hooks is not None
    assert hooks.values["STRIPE_WEBHOOK_SECRETS"] == "whsec_eu2_not_a_secret"
    assert webhook_config.load(ADAPTERS["stripe"], DEFAULT_ACCOUNT) is None
    assert stripe_settings("eu-2").api_key == "sk_test_eu2_not_a_secret"
    assert stripe_settings(DEFAULT_ACCOUNT).api_key is None
    adyen = adyen_settings("eu-2")
    assert (adyen.api_key, adyen.merchant_account, adyen.environment) == ("adyen_eu2", "Merchant_EU2", "test")


def test_deadletters_reads_the_subscriptions_from_the_topology_file(tmp_path: Path) -> None:
    """``deadletters list --all`` reads infra/topology.yaml as a file, the same names the loader in infra sees."""
    from infra.local.topology import TOPOLOGY_FILE, load
    from shared.ops.deadletters import DEFAULT_TOPOLOGY, topology_subscriptions

    assert DEFAULT_TOPOLOGY == TOPOLOGY_FILE
    assert topology_subscriptions(TOPOLOGY_FILE) == sorted(load().subscriptions)
    other = tmp_path / "topology.yaml"
    other.write_text("subscriptions:\n  b-sub: {topic: t}\n  a-sub: {topic: t}\n")
    assert topology_subscriptions(other) == ["a-sub", "b-sub"]
    with pytest.raises(SystemExit, match="cannot read"):
        topology_subscriptions(tmp_path / "missing.yaml")
