"""Every resource, data source, argument and nested block in infra/ exists in the pinned google provider.

The schema comes from the provider's prebuilt CDK bindings (see tests/infra/provider_schema.py), fetched
by `make provider-schema`. Planted mistakes in a copy of infra/ must each be reported.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.infra.hcl import INFRA, ROOT, attr, parse
from tests.infra.provider_schema import REQUIREMENT, Schema, WheelMissing, check_folder, load_schema


@pytest.fixture(scope="module")
def schema() -> Schema:
    try:
        return load_schema()
    except WheelMissing as exc:
        pytest.skip(f"google provider schema unavailable, check skipped: {exc}")


def test_the_schema_is_the_pinned_provider_major_version(schema: Schema) -> None:
    (tf,) = parse(INFRA / "versions.tf")["terraform"]
    pinned = attr(attr(tf, "required_providers"), "google")["version"]
    assert schema.provider_version.split(".")[0] == pinned.split(".")[0], (schema.provider_version, pinned)
    assert len(schema.resources) > 1000
    assert len(schema.data_sources) > 300


def test_infra_matches_the_google_provider_schema(schema: Schema) -> None:
    problems = check_folder(INFRA, schema)
    assert not problems, "\n".join(problems)


@pytest.fixture
def infra_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "infra"
    shutil.copytree(INFRA, dest, ignore=shutil.ignore_patterns(".terraform", "__pycache__", "local"))
    return dest


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}: update the planted mistake"
    path.write_text(text.replace(old, new, 1))


def test_the_untouched_copy_is_clean(schema: Schema, infra_copy: Path) -> None:
    assert check_folder(infra_copy, schema) == []


def test_a_planted_unknown_argument_is_reported(schema: Schema, infra_copy: Path) -> None:
    main = infra_copy / "modules" / "pubsub" / "main.tf"
    _edit(
        main, "  name                       = each.key\n", '  name                       = each.key\n  colour = "red"\n'
    )
    (problem,) = check_folder(infra_copy, schema)
    assert problem == "modules/pubsub/main.tf: google_pubsub_topic.this: unknown argument or block 'colour'"


def test_a_planted_unknown_nested_block_is_reported(schema: Schema, infra_copy: Path) -> None:
    main = infra_copy / "modules" / "subscription" / "main.tf"
    _edit(main, "    oidc_token {\n", "    oidc_tokens {\n      audience = var.audience\n    }\n    oidc_token {\n")
    (problem,) = check_folder(infra_copy, schema)
    where = "modules/subscription/main.tf: google_pubsub_subscription.this.push_config"
    assert problem == f"{where}: unknown argument or block 'oidc_tokens'"


def test_a_planted_misspelt_resource_type_is_reported(schema: Schema, infra_copy: Path) -> None:
    main = infra_copy / "modules" / "secrets" / "main.tf"
    _edit(main, 'resource "google_secret_manager_secret" "this"', 'resource "google_secretmanager_secret" "this"')
    (problem,) = check_folder(infra_copy, schema)
    assert re.fullmatch(
        r"modules/secrets/main\.tf: google_secretmanager_secret\.this: unknown resource type "
        r"'google_secretmanager_secret' in hashicorp/google \d+\.\d+\.\d+",
        problem,
    )


def test_a_planted_missing_required_argument_is_reported(schema: Schema, infra_copy: Path) -> None:
    main = infra_copy / "modules" / "subscription" / "main.tf"
    _edit(main, "  topic                      = var.topic_id\n", "")
    (problem,) = check_folder(infra_copy, schema)
    assert problem == "modules/subscription/main.tf: google_pubsub_subscription.this: missing required argument 'topic'"


def test_required_blocks_computed_attributes_dynamic_blocks_and_misspelt_data_sources(
    schema: Schema, infra_copy: Path
) -> None:
    secrets = infra_copy / "modules" / "secrets" / "main.tf"
    _edit(secrets, "  replication {\n    auto {}\n  }\n", "")
    fn = infra_copy / "modules" / "function" / "main.tf"
    # uri is computed by the provider; a dynamic block's content is checked like a block.
    _edit(fn, "    all_traffic_on_latest_revision   = true\n", '    uri = "https://x"\n')
    _edit(fn, '        version    = "latest"\n', '        versions   = "latest"\n')
    _edit(infra_copy / "main.tf", 'data "google_project" "this"', 'data "google_projekt" "this"')
    problems = check_folder(infra_copy, schema)
    sev = "modules/function/main.tf: google_cloudfunctions2_function.this.service_config.secret_environment_variables"
    assert sorted(problems) == sorted(
        [
            "modules/secrets/main.tf: google_secret_manager_secret.this: missing required block 'replication'",
            "modules/function/main.tf: google_cloudfunctions2_function.this.service_config: 'uri' is computed by "
            "the provider (read-only) and cannot be set",
            f"{sev}: unknown argument or block 'versions'",
            f"{sev}: missing required argument 'version'",
            "main.tf: data.google_projekt.this: unknown data source 'google_projekt' in hashicorp/google "
            f"{schema.provider_version}",
        ]
    )


def test_meta_arguments_are_not_arguments(schema: Schema, tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        """
resource "google_pubsub_topic" "t" {
  for_each   = toset(["a"])
  name       = each.key
  provider   = google
  depends_on = [google_pubsub_topic.u]
  lifecycle {
    prevent_destroy = true
  }
}
resource "google_pubsub_topic" "u" {
  count = 1
  name  = "u"
  labels = {
    team = "payments"
  }
}
provider "google" {
  alias   = "other"
  project = "p"
  default_labels = {
    a = "b"
  }
}
"""
    )
    assert check_folder(tmp_path, schema) == []
    (tmp_path / "main.tf").write_text('provider "google" {\n  projekt = "p"\n}\n')
    assert check_folder(tmp_path, schema) == ["main.tf: provider.google: unknown argument or block 'projekt'"]


def test_make_test_fetches_the_wheel_without_installing_it() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_deps = re.search(r"^test:(.*)$", makefile, re.M)
    assert test_deps
    assert "provider-schema" in test_deps.group(1).split()
    recipe = makefile[makefile.index("\nprovider-schema:") :]
    assert "pip download" in recipe
    assert "--no-deps" in recipe
    assert "--require-hashes" in recipe
    assert "-r $(PROVIDER_SCHEMA_REQ)" in recipe
    assert f"PROVIDER_SCHEMA_REQ := {REQUIREMENT.relative_to(ROOT).as_posix()}" in makefile
    assert re.search(
        r"^cdktf-cdktf-provider-google==16\.\d+\.\d+ --hash=sha256:[0-9a-f]{64}$", REQUIREMENT.read_text(), re.M
    )
