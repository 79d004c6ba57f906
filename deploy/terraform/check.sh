#!/usr/bin/env bash
# Static checks of deploy/terraform that need no cloud credentials and no
# provider registry:
#   1. terraform fmt -check -recursive
#   2. checkov (IaC scanner); every suppression is an inline, justified
#      `#checkov:skip=CKV_...: reason` in the .tf file it concerns
#   3. pytest tests that parse the HCL and assert the confidential settings,
#      evaluate the variable validations and run the VM bootstrap script
#
# Usage: bash deploy/terraform/check.sh   (from anywhere)
#
# Tools are installed into deploy/terraform/.venv/{checkov,tests} from the
# pinned lists in deploy/terraform/requirements/ and reused while those lists
# are unchanged. checkov's dependencies ship their own `hcl2` module (a fork of
# python-hcl2), so the scanner and the tests get separate environments.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

readonly tf_dir="deploy/terraform"
readonly venv_root="$here/.venv"
PYTHON="${PYTHON:-python3}"

export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 PYTHONDONTWRITEBYTECODE=1
# A CLI configuration path that does not exist only produces warnings; use none.
if [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -e "$TF_CLI_CONFIG_FILE" ]]; then
  export TF_CLI_CONFIG_FILE=/dev/null
fi

step() { printf '\n--- %s\n' "$*"; }

# ensure_venv NAME REQUIREMENTS: (re)creates .venv/NAME when the pinned list
# changed or the environment is missing or broken; otherwise does nothing.
ensure_venv() {
  local name="$1" requirements="$2" dir stamp want
  dir="$venv_root/$name"
  stamp="$dir/.requirements.sha256"
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "installing $name tools into ${dir#"$repo/"}"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --requirement "$requirements"
  echo "$want" >"$stamp"
}

# terraform: use the one on PATH; otherwise try Debian's packages (HashiCorp's
# own apt repository is not reachable from CI). Sets have_terraform.
have_terraform=0
if command -v terraform >/dev/null 2>&1; then
  have_terraform=1
elif command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
  apt-get update -qq >/dev/null 2>&1 || true
  if apt-cache show terraform >/dev/null 2>&1 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq terraform >/dev/null 2>&1; then
    have_terraform=1
  fi
fi

step "terraform fmt -check -recursive $tf_dir"
if ((have_terraform)); then
  tf_version="$(terraform version)"
  echo "${tf_version%%$'\n'*}"
  if ! terraform fmt -check -recursive -diff "$tf_dir"; then
    echo "terraform fmt: files above need \`terraform fmt -recursive $tf_dir\`" >&2
    exit 1
  fi
  echo "formatting ok"
else
  echo "SKIPPED: terraform is not installed, and neither Debian's packages nor PyPI provide it;"
  echo "         the fmt check and the tests that run terraform are skipped on this machine."
fi

step "checkov (pinned: $(grep -m1 '^checkov==' "$here/requirements/checkov.txt"))"
ensure_venv checkov "$here/requirements/checkov.txt"
"$venv_root/checkov/bin/checkov" --directory "$tf_dir" --framework terraform \
  --skip-path '\.venv' --skip-path '\.terraform' \
  --download-external-modules false --skip-download --compact --quiet

step "HCL tests (pytest)"
ensure_venv tests "$here/requirements/tests.txt"
SIGIL_TF_HAVE_TERRAFORM="$have_terraform" \
  "$venv_root/tests/bin/python" -m pytest -q -p no:cacheprovider "$tf_dir/tests"
