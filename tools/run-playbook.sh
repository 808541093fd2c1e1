#!/usr/bin/env bash
# Run one playbook on one environment the way CI does (.github/workflows/playbook.yml):
#   ENVIRONMENT=<inventories/ folder> PLAYBOOK=<playbooks/ name without .yml> CHECK=true|false
# CHECK=true plans (--check --diff) and changes nothing. Inputs are checked against the folders
# before anything runs, so a typo cannot select another file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# names_in DIR SUFFIX: the file names of DIR ending in SUFFIX, without it, on one line
names_in() {
	local path names=()
	for path in "$1"/*"$2"; do
		path="${path##*/}"
		names+=("${path%"$2"}")
	done
	echo "${names[*]}"
}

for name in ENVIRONMENT PLAYBOOK CHECK; do
	[[ -n "${!name:-}" ]] || { echo "run-playbook: ${name} is not set. Fix: set ENVIRONMENT, PLAYBOOK and CHECK." >&2; exit 2; }
done
[[ "${ENVIRONMENT}" =~ ^[a-z]+$ && -f "inventories/${ENVIRONMENT}/hosts.yml" ]] || {
	echo "run-playbook: ENVIRONMENT=${ENVIRONMENT} is not an inventory. Fix: one of $(names_in inventories "")" >&2
	exit 2
}
[[ "${PLAYBOOK}" =~ ^[a-z_]+$ && -f "playbooks/${PLAYBOOK}.yml" ]] || {
	echo "run-playbook: PLAYBOOK=${PLAYBOOK} is not a playbook. Fix: one of $(names_in playbooks .yml)" >&2
	exit 2
}
args=(playbooks/"${PLAYBOOK}".yml -i "inventories/${ENVIRONMENT}")
case "${CHECK}" in
	true) args+=(--check --diff) ;;
	false) ;;
	*) echo "run-playbook: CHECK=${CHECK}. Fix: true (plan) or false (apply)." >&2; exit 2 ;;
esac
echo "ansible-playbook ${args[*]}"
exec .venv/bin/ansible-playbook "${args[@]}"
