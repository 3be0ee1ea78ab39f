"""The Terraform in infra/ and the code agree, and the infra keeps its security rules.

Terraform cannot be initialised here (the google provider is not downloadable offline), so these
tests read the HCL itself: topology.yaml is the only list of functions, topics and subscriptions, the
root module must generate every resource from it with for_each, and the modules must wire each
field through. Cloud Build additionally runs `terraform validate` and `plan`.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import shared.events
from infra.local.topology import Topology, load
from shared.events.envelope import registered
from tests.infra.hcl import (
    INFRA,
    ROOT,
    Resource,
    all_resources,
    attr,
    blocks,
    locals_of,
    named,
    parse,
    parse_text,
    resources,
    tf_files,
    walk,
)


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load()


@pytest.fixture(scope="module")
def raw_topology() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((INFRA / "topology.yaml").read_text())
    return data


@pytest.fixture(scope="module")
def root() -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for p in sorted(INFRA.glob("*.tf")):
        for kind, entries in parse(p).items():
            doc.setdefault(kind, []).extend(entries)
    return doc


def module_resources(module: str) -> dict[tuple[str, str], Resource]:
    return {(r.type, r.name): r for r in all_resources(INFRA / "modules" / module)}


# --- formatting and parsing ---------------------------------------------------------------------


def test_terraform_fmt_is_clean() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed (Cloud Build runs terraform fmt -check too)")
    proc = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "infra"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"terraform fmt would change files:\n{proc.stdout}{proc.stderr}"


def test_every_tf_file_parses_and_every_module_is_complete() -> None:
    files = tf_files()
    assert len(files) >= 10
    for p in files:
        parse(p)
    for module in (INFRA / "modules").iterdir():
        names = {p.name for p in module.glob("*.tf")}
        assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} <= names, module.name


def test_provider_pinned_and_state_in_a_partial_gcs_backend(root: dict[str, Any]) -> None:
    (tf,) = root["terraform"]
    google = attr(attr(tf, "required_providers"), "google")
    assert google["source"] == "hashicorp/google"
    assert re.fullmatch(r"\d+\.\d+\.\d+", google["version"]), "pin an exact provider version"
    (backend,) = tf["backend"]
    assert backend == {"gcs": {}}, "backend config belongs in envs/<env>.backend.hcl, not in code"
    for env in ("dev", "prod"):
        cfg = (INFRA / "envs" / f"{env}.backend.hcl").read_text()
        assert re.search(r'^bucket\s*=\s*"', cfg, re.M)
        assert re.search(rf'^prefix\s*=\s*".*{env}', cfg, re.M)


def test_variables_are_typed_and_described_everywhere() -> None:
    for p in tf_files():
        doc = parse(p)
        for name, body in named(doc, "variable").items():
            assert "type" in body, f"{p.relative_to(ROOT)}: variable {name} has no type"
            assert attr(body, "description"), f"{p.relative_to(ROOT)}: variable {name} has no description"
        for name, body in named(doc, "output").items():
            assert attr(body, "description"), f"{p.relative_to(ROOT)}: output {name} has no description"


def test_tfvars_for_dev_and_prod_name_only_declared_variables(root: dict[str, Any]) -> None:
    declared = set(named(root, "variable"))
    for env in ("dev", "prod"):
        values = parse(INFRA / "envs" / f"{env}.tfvars")
        assert set(values) <= declared, set(values) - declared
        assert attr(values, "environment") == env


# --- generated from topology.yaml ---------------------------------------------------------------


def test_everything_is_generated_from_topology_yaml(root: dict[str, Any]) -> None:
    loc = locals_of(root)
    assert loc["topology"] == '${yamldecode(file("${path.module}/topology.yaml"))}'
    for name, section in (
        ("topics", "topics"),
        ("functions", "functions"),
        ("subscriptions", "subscriptions"),
        ("schedules", "schedules"),
    ):
        assert f"local.topology.{section}" in loc[name], name
    modules = named(root, "module")
    assert attr(modules["function"], "for_each") == "${local.functions}"
    assert attr(modules["subscription"], "for_each") == "${local.subscriptions}"
    assert attr(modules["pubsub"], "topics") == "${local.topics}"
    assert "local.schedules" in attr(modules["scheduler"], "jobs")
    assert attr(modules["firestore"], "indexes") == "${local.firestore_indexes}"
    assert "local.topology.firestore.indexes" in loc["firestore_indexes"]
    # No resource in the root names a function, topic or subscription of the topology by hand.
    text = "\n".join(p.read_text() for p in INFRA.glob("*.tf"))
    topo = load()
    for name in [*topo.topics, *topo.subscriptions, *topo.schedules]:
        assert f'"{name}"' not in text, f"{name} is hard-coded in the root module"


def _decorated(main: Path) -> dict[str, set[str]]:
    """Top-level functions of main.py and the functions_framework decorators on each."""
    tree = ast.parse(main.read_text())
    found: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names = set()
            for d in node.decorator_list:
                target = d.func if isinstance(d, ast.Call) else d
                names.add(ast.unparse(target).rsplit(".", 1)[-1])
            found[node.name] = names
    return found


def test_every_function_folder_is_deployed_with_its_entry_point_and_trigger(
    topology: Topology, root: dict[str, Any]
) -> None:
    folders = {p.parent.name for p in (ROOT / "functions").glob("*/main.py")}
    assert folders, "no functions/<name>/main.py found"
    assert folders == set(topology.functions), "functions/ and topology.yaml disagree"
    decorator = {"http": "http", "pubsub": "cloud_event"}
    for fn in topology.functions.values():
        defs = _decorated(fn.source)
        assert fn.entry_point in defs, f"{fn.key}: entry point {fn.entry_point} not defined in main.py"
        assert decorator[fn.trigger] in defs[fn.entry_point], (
            f"{fn.key}: a {fn.trigger} function needs @functions_framework.{decorator[fn.trigger]}"
        )
        assert re.fullmatch(r"[a-z][a-z0-9-]{0,48}[a-z0-9]", fn.name), fn.name
    # ... and the HCL passes both through to the deployed function.
    loc = locals_of(root)["functions"]
    assert "'entry_point': '${f.entry_point}'" in loc
    assert "'trigger': '${f.trigger}'" in loc
    assert """'name': '${replace(key,"_","-")}'""" in loc
    call = named(root, "module")["function"]
    for field in ("entry_point", "trigger", "name", "public", "memory", "timeout_s", "concurrency"):
        assert attr(call, field) == f"${{each.value.{field}}}", field
    assert attr(call, "min_instances") == "${each.value.min_instances}"
    assert attr(call, "max_instances") == "${each.value.max_instances}"
    assert attr(call, "bundle_zip") == "${local.bundle_dir}/${each.key}.zip"
    gcf = module_resources("function")[("google_cloudfunctions2_function", "this")].body
    build = blocks(gcf, "build_config")[0]
    assert attr(build, "entry_point") == "${var.entry_point}"
    service = blocks(gcf, "service_config")[0]
    assert attr(service, "available_memory") == "${var.memory}"
    assert attr(service, "timeout_seconds") == "${var.timeout_s}"
    assert attr(service, "max_instance_request_concurrency") == "${var.concurrency}"
    assert attr(service, "min_instance_count") == "${var.min_instances}"
    assert attr(service, "max_instance_count") == "${var.max_instances}"
    assert attr(service, "service_account_email") == "${google_service_account.function.email}"
    assert attr(service, "ingress_settings") == "${local.ingress}"
    main = parse(INFRA / "modules" / "function" / "main.tf")
    assert 'var.trigger == "pubsub"' in locals_of(main)["push_consumer"]


def test_every_topic_the_code_publishes_to_exists(topology: Topology) -> None:
    for mod in pkgutil.walk_packages(shared.events.__path__, "shared.events."):
        importlib.import_module(mod.name)
    contracts = registered()
    assert contracts, "no event contracts registered"
    missing = {f"{cls.__name__} -> {cls.TOPIC}" for cls in contracts.values() if cls.TOPIC not in topology.topics}
    assert not missing, f"the code publishes to topics that topology.yaml lacks: {sorted(missing)}"
    for fn in topology.functions.values():
        assert set(fn.publishes) <= set(topology.topics), fn.key


def test_topology_secrets_are_env_var_names(topology: Topology) -> None:
    for fn in topology.functions.values():
        for name in fn.secrets:
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"{fn.key}: secret {name} must be an env var name"


# --- push subscriptions: OIDC, retries, dead letters --------------------------------------------


def test_every_push_subscription_has_oidc_retry_and_a_dead_letter_topic(topology: Topology) -> None:
    push = [r for r in all_resources() if r.type == "google_pubsub_subscription" and blocks(r.body, "push_config")]
    assert push, "no push subscription in the HCL"
    for r in push:
        (cfg,) = blocks(r.body, "push_config")
        (oidc,) = blocks(cfg, "oidc_token")
        assert attr(oidc, "service_account_email"), r
        assert attr(oidc, "audience"), r
        (dlp,) = blocks(r.body, "dead_letter_policy")
        assert attr(dlp, "dead_letter_topic"), r
        assert attr(dlp, "max_delivery_attempts"), r
        assert blocks(r.body, "retry_policy"), r
    res = module_resources("subscription")
    assert attr(res[("google_pubsub_topic", "dead_letter")].body, "name") == "${var.name}-dlq"
    assert attr(res[("google_pubsub_subscription", "dead_letter")].body, "topic") == (
        "${google_pubsub_topic.dead_letter.id}"
    ), "a pull subscription on the dead-letter topic is what operators replay from"
    (dlp,) = blocks(res[("google_pubsub_subscription", "this")].body, "dead_letter_policy")
    assert attr(dlp, "dead_letter_topic") == "${google_pubsub_topic.dead_letter.id}"
    # The Pub/Sub service agent may publish dead letters and acknowledge on the source subscription.
    pub = res[("google_pubsub_topic_iam_member", "dead_letter_publisher")].body
    assert attr(pub, "role") == "roles/pubsub.publisher"
    assert attr(pub, "member") == "${var.pubsub_service_agent}"
    sub = res[("google_pubsub_subscription_iam_member", "source_subscriber")].body
    assert attr(sub, "role") == "roles/pubsub.subscriber"
    assert attr(sub, "member") == "${var.pubsub_service_agent}"
    # Every topology subscription feeds a pubsub function whose push identity may invoke it.
    for s in topology.subscriptions.values():
        assert topology.functions[s.function].trigger == "pubsub"
    fn = module_resources("function")
    invoker = fn[("google_cloud_run_v2_service_iam_member", "push_invoker")].body
    assert attr(invoker, "role") == "roles/run.invoker"
    assert attr(invoker, "member") == "${google_service_account.push[0].member}"
    assert attr(invoker, "name") == "${google_cloudfunctions2_function.this.service_config[0].service}"


# --- IAM ----------------------------------------------------------------------------------------

_BROAD = re.compile(r"^roles/(owner|editor|viewer|.*[aA]dmin.*|iam\.securityAdmin|resourcemanager\..*)$")
# Project scope only where GCP offers nothing narrower (reasons in the HCL comments).
_PROJECT_ROLES = {"roles/datastore.user", "roles/logging.logWriter"}
# Eventarc's bucket triggers: the trigger identity's receiver role and the Cloud Storage agent's publisher
# role exist only at project level (these two resources, by name; reasons in the HCL comments).
_PROJECT_GRANTS = {
    ("google_project_iam_member", "eventarc_receiver", "roles/eventarc.eventReceiver"),
    ("google_project_iam_member", "gcs_eventarc_publisher", "roles/pubsub.publisher"),
    # listing Pub/Sub subscriptions exists only at project level (the console's dead-letter page)
    ("google_project_iam_member", "dead_letter_lister", "roles/pubsub.viewer"),
    # reading time series exists only at project (metrics scope) level (the console's webhook answers)
    ("google_project_iam_member", "metrics_reader", "roles/monitoring.viewer"),
}


def iam_problems(res: list[Resource]) -> list[str]:
    """Broad roles, authoritative IAM resources and unexpected project-level grants."""
    problems: list[str] = []
    for r in res:
        where = f"{r.file.name}: {r.type}.{r.name}"
        if r.type.endswith(("_iam_policy", "_iam_binding")):
            problems.append(f"{where}: authoritative IAM; use *_iam_member")
        for key, value in walk(r.body):
            if key not in ("role", "roles"):
                continue
            for role in value if isinstance(value, list) else [value]:
                if isinstance(role, str) and _BROAD.match(role):
                    problems.append(f"{where}: broad role {role}")
        if r.type in ("google_project_iam_member", "google_organization_iam_member", "google_folder_iam_member"):
            role = attr(r.body, "role")
            if role not in _PROJECT_ROLES and (r.type, r.name, role) not in _PROJECT_GRANTS:
                problems.append(f"{where}: {role} granted above resource level")
    return problems


def test_no_broad_roles_and_iam_scoped_to_resources() -> None:
    res = all_resources()
    assert not iam_problems(res)
    members = [r for r in res if r.type.endswith("_iam_member")]
    assert len(members) >= 10


def test_the_iam_checker_catches_broad_and_project_wide_grants(tmp_path: Path) -> None:
    bad = parse_text(
        """
resource "google_project_iam_member" "a" {
  project = "p"
  role    = "roles/editor"
  member  = "serviceAccount:x"
}
resource "google_project_iam_member" "b" {
  project = "p"
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:x"
}
resource "google_pubsub_topic_iam_binding" "c" {
  topic   = "t"
  role    = "roles/pubsub.admin"
  members = ["serviceAccount:x"]
}
"""
    )
    problems = iam_problems(list(resources(bad, tmp_path / "bad.tf")))
    assert any("roles/editor" in p for p in problems)
    assert any("roles/pubsub.publisher granted above resource level" in p for p in problems)
    assert any("authoritative" in p for p in problems)
    assert any("roles/pubsub.admin" in p for p in problems)


def test_one_service_account_per_function_with_publisher_and_secret_access_per_resource() -> None:
    fn = module_resources("function")
    sa = fn[("google_service_account", "function")].body
    assert "var.name" in attr(sa, "account_id")
    pub = fn[("google_pubsub_topic_iam_member", "publisher")].body
    assert attr(pub, "for_each") == "${var.publishes}"
    assert attr(pub, "topic") == "${each.value}"
    assert attr(pub, "member") == "${google_service_account.function.member}"
    sec = fn[("google_secret_manager_secret_iam_member", "accessor")].body
    assert attr(sec, "role") == "roles/secretmanager.secretAccessor"
    assert attr(sec, "secret_id") == "${each.value}"
    service = blocks(fn[("google_cloudfunctions2_function", "this")].body, "service_config")[0]
    dyn = blocks(service, "dynamic")[0]["secret_environment_variables"]
    assert attr(dyn, "for_each") == "${var.secrets}"
    bucket = fn[("google_storage_bucket_iam_member", "invoice_objects")].body
    assert "var.invoice_bucket_access" in attr(bucket, "for_each")
    assert "objectAdmin" not in str(bucket)


def test_dead_letter_readers_get_subscriber_on_each_dlq_subscription_and_viewer_only(
    root: dict[str, Any], raw_topology: dict[str, Any]
) -> None:
    readers = [k for k, f in raw_topology["functions"].items() if f.get("dead_letters")]
    assert readers == ["console"]
    loc = locals_of(root)
    assert "f.dead_letters" in loc["dead_letter_grants"]
    assert "local.subscriptions" in loc["dead_letter_grants"]
    res = {(r.type, r.name): r.body for r in all_resources() if r.file.name == "dead_letters.tf"}
    sub = res[("google_pubsub_subscription_iam_member", "dead_letter_subscriber")]
    assert attr(sub, "for_each") == "${local.dead_letter_grants}"
    assert attr(sub, "role") == "roles/pubsub.subscriber"
    assert attr(sub, "subscription") == "${module.subscription[each.value.subscription].dead_letter_subscription}"
    assert "module.function[each.value.function].service_account_email" in attr(sub, "member")
    lister = res[("google_project_iam_member", "dead_letter_lister")]
    assert attr(lister, "role") == "roles/pubsub.viewer"
    assert "f.dead_letters" in attr(lister, "for_each")
    assert set(res) == {
        ("google_pubsub_subscription_iam_member", "dead_letter_subscriber"),
        ("google_project_iam_member", "dead_letter_lister"),
    }


def test_metrics_readers_get_monitoring_viewer_only(root: dict[str, Any], raw_topology: dict[str, Any]) -> None:
    readers = [k for k, f in raw_topology["functions"].items() if f.get("metrics_reader")]
    assert readers == ["console"]
    assert "f.metrics_reader" in str(locals_of(root)["functions"])
    res = {(r.type, r.name): r.body for r in all_resources() if r.file.name == "metrics_readers.tf"}
    grant = res[("google_project_iam_member", "metrics_reader")]
    assert attr(grant, "role") == "roles/monitoring.viewer"
    assert "f.metrics_reader" in attr(grant, "for_each")
    assert "module.function[each.value].service_account_email" in attr(grant, "member")
    assert set(res) == {("google_project_iam_member", "metrics_reader")}


def test_only_the_webhook_function_is_public(topology: Topology) -> None:
    public = {k for k, f in topology.functions.items() if f.public}
    assert public <= {"webhooks"}, f"only the PSP webhook endpoint may be public, not {public - {'webhooks'}}"
    for k in public:
        assert topology.functions[k].trigger == "http"
    anonymous = [
        r for r in all_resources() if any(v in (["allUsers"], ["allAuthenticatedUsers"]) for _, v in walk(r.body))
    ]
    assert [(r.type, r.name) for r in anonymous] == [("google_cloud_run_v2_service_iam_member", "public")]
    assert attr(anonymous[0].body, "count") == "${var.public ? 1 : 0}"


def test_secret_values_never_reach_terraform() -> None:
    res = all_resources()
    assert not [r for r in res if r.type == "google_secret_manager_secret_version"]
    assert not [k for r in res for k, _ in walk(r.body) if k in ("secret_data", "secret_data_wo")]
    for p in (INFRA / "envs").iterdir():
        assert not re.search(r"(?i)(secret|password|api_key|token)\s*=", p.read_text()), p.name


# --- data: invoice bucket and Firestore ---------------------------------------------------------


def test_invoice_bucket_is_private_uniform_and_retained(root: dict[str, Any]) -> None:
    bucket = module_resources("bucket")[("google_storage_bucket", "this")].body
    assert attr(bucket, "uniform_bucket_level_access") is True
    assert attr(bucket, "public_access_prevention") == "enforced"
    call = named(root, "module")["invoice_bucket"]
    assert attr(call, "retention_days") == "${var.invoice_retention_days}"
    assert attr(call, "name") == "${var.project_id}-invoices", "shared.config defaults INVOICE_BUCKET to this"
    assert "INVOICE_BUCKET" in locals_of(root)["common_env"]


def test_firestore_ttl_on_idempotency_and_indexes_from_topology(raw_topology: dict[str, Any]) -> None:
    loc = locals_of(parse(INFRA / "locals.tf"))
    assert "'collection': 'idempotency', 'field': 'expire_at'" in loc["firestore_ttl_fields"]
    assert "'collection': 'idempotency', 'field': 'result'" in loc["firestore_exemptions"]
    field = module_resources("firestore")[("google_firestore_field", "this")].body
    assert "ttl_config" in blocks(field, "dynamic")[0]
    db = module_resources("firestore")[("google_firestore_database", "this")].body
    assert attr(db, "type") == "FIRESTORE_NATIVE"
    for index in (raw_topology.get("firestore") or {}).get("indexes") or []:
        assert set(index) <= {"collection", "fields", "query_scope"}, index
        assert len(index["fields"]) >= 2, index
        for f in index["fields"]:
            assert f.get("field_path"), index
            assert (f.get("order") in ("ASCENDING", "DESCENDING")) != ("array_config" in f), index


def test_firestore_sits_in_the_stacks_region_unless_a_location_is_named(root: dict[str, Any]) -> None:
    """Functions, the buckets and Pub/Sub's message storage are regional: by default the database is beside them
    (a multi-region database would outlive a regional outage nothing could use it through, at twice the price)."""
    variables = named(root, "variable")
    assert attr(variables["firestore_location"], "default") is None
    location = str(attr(named(root, "module")["firestore"], "location")).replace(" ", "")
    assert location == "${coalesce(var.firestore_location,var.region)}"
    for env in ("dev", "prod"):
        values = parse(INFRA / "envs" / f"{env}.tfvars")
        named_location = attr(values, "firestore_location") if "firestore_location" in values else None
        assert named_location in (None, attr(values, "region")), env


def test_schedules_publish_to_topology_topics(topology: Topology) -> None:
    for s in topology.schedules.values():
        assert s.topic in topology.topics
        assert len(s.cron.split()) == 5, s.name
    job = module_resources("scheduler")[("google_cloud_scheduler_job", "this")].body
    (target,) = blocks(job, "pubsub_target")
    assert attr(target, "topic_name") == "${each.value.topic_id}"
