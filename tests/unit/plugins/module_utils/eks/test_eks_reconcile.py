"""The eksctl reconciler against a scripted eksctl: exact argv sequences, check mode, plan and diff."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from ansible_collections.biomage.iac.plugins.module_utils.eks.errors import EksError
from ansible_collections.biomage.iac.plugins.module_utils.eks.nodegroups import nodegroup_spec, replacement_name

from tests.lib.eks_scenarios import (
    ADMIN,
    CLUSTER,
    FINISH_READS,
    READS,
    UPGRADE_PATH,
    VIEW,
    C,
    R,
    args_of,
    base_config,
    config_at,
    desired,
    live,
    make_reconciler,
    mutating_of,
    user,
)
from tests.lib.fake_eksctl import ADDON_BUILDS, CREATOR_ROLE, EXPIRED, FakeEksctl, new_state


def kubeconfig_write(tmp_path: Path) -> list[str]:
    return ["utils", "write-kubeconfig", *C, "--kubeconfig", str(tmp_path / "kube" / f"{CLUSTER}.yaml")]


def work(tmp_path: Path, name: str) -> str:
    return str(tmp_path / "work" / name)


def changed_config(**nodegroup_fields: object) -> dict:
    config = base_config()
    config["managedNodeGroups"][0].update(nodegroup_fields)
    return config


# -- cluster missing --------------------------------------------------------------------------------
def test_missing_cluster_check_mode_plans_a_create_and_calls_nothing_mutating(tmp_path: Path) -> None:
    fake = FakeEksctl(new_state())
    result = make_reconciler(fake, tmp_path, check_mode=True).present(desired(admins=("alice",)))

    assert args_of(fake) == [["version", "-o", "json"], ["get", "cluster", "--name", CLUSTER, *R, "-o", "json"]]
    assert mutating_of(fake) == []
    assert result["changed"] is True
    plan = result["plan"]
    assert plan["cluster"] == "create"
    assert plan["nodegroups"]["create"] == ["workers"]
    assert plan["fargate_profiles"]["create"] == ["worker", "pipeline"]
    assert plan["access_entries"]["add"] == [user("alice")]
    assert [a["name"] for a in plan["addons"]["create"]] == [
        "vpc-cni",
        "coredns",
        "kube-proxy",
        "eks-pod-identity-agent",
    ]
    assert result["diff"]["before"] == {"state": "absent"}
    assert result["diff"]["after"]["version"] == "1.36"
    assert result["diff"]["after"]["accessEntries"] == {user("alice"): ["AmazonEKSClusterAdminPolicy"]}
    assert result["endpoint"] is None and result["commands"] == []
    assert not (tmp_path / "kube").exists()


def test_missing_cluster_is_created_then_a_second_run_changes_nothing(tmp_path: Path) -> None:
    fake = FakeEksctl(new_state())
    config = desired(admins=("alice",))
    result = make_reconciler(fake, tmp_path).present(config)

    assert args_of(fake) == [
        ["version", "-o", "json"],
        ["get", "cluster", "--name", CLUSTER, *R, "-o", "json"],
        ["create", "cluster", "--config-file", work(tmp_path, "cluster.yaml"), "--write-kubeconfig=false"],
        kubeconfig_write(tmp_path),
        *FINISH_READS,
    ]
    assert result["changed"] is True
    assert result["endpoint"].endswith(".gr7.eu-west-1.eks.amazonaws.com")
    assert result["oidc_issuer"].startswith("https://oidc.eks.eu-west-1.amazonaws.com/id/")
    assert result["version"] == "1.36"
    assert result["nodegroups"][0]["name"] == "workers"
    assert Path(result["kubeconfig"]).is_file()

    fake.calls.clear()
    again = make_reconciler(fake, tmp_path).present(config)
    assert again["changed"] is False, again["plan"]
    assert args_of(fake) == [*READS, kubeconfig_write(tmp_path), *FINISH_READS]


def test_rendered_config_carries_name_region_spec_tag_and_access_entries(tmp_path: Path) -> None:
    fake = FakeEksctl(new_state())
    make_reconciler(fake, tmp_path).present(desired(admins=("alice",), users=("bob",)))
    rendered = yaml.safe_load(Path(work(tmp_path, "cluster.yaml")).read_text())
    assert rendered["metadata"]["name"] == CLUSTER and rendered["metadata"]["region"] == "eu-west-1"
    assert rendered["managedNodeGroups"][0]["tags"]["biomage.net/nodegroup-spec"].startswith("v1 ami=AmazonLinux2023")
    entries = {
        e["principalARN"]: e["accessPolicies"][0]["policyARN"] for e in rendered["accessConfig"]["accessEntries"]
    }
    assert entries == {user("alice"): ADMIN, user("bob"): VIEW}


# -- existing cluster -------------------------------------------------------------------------------
def test_existing_cluster_in_sync_reads_only(tmp_path: Path) -> None:
    config = desired(admins=("alice",))
    fake = FakeEksctl(live(config))
    result = make_reconciler(fake, tmp_path, check_mode=True).present(config)

    assert args_of(fake) == READS
    assert result["changed"] is True  # only because the kubeconfig file does not exist yet
    assert result["plan"]["kubeconfig"]["action"] == "write"
    assert result["plan"]["cluster"] == "unchanged"
    assert result["diff"]["before"] == result["diff"]["after"]
    assert result["version"] == "1.36"


def test_older_version_is_upgraded_one_minor_at_a_time_then_nodes_and_addons(tmp_path: Path) -> None:
    config = desired()
    state = live(config, version="1.34")
    state["addons"]["kube-proxy"]["Version"] = "v1.34.2-eksbuild.3"
    fake = FakeEksctl(state)

    check = make_reconciler(fake, tmp_path, check_mode=True, max_version_steps=2).present(config)
    assert mutating_of(fake) == []
    assert check["plan"]["version_steps"] == ["1.35", "1.36"]
    assert check["plan"]["nodegroups"]["upgrade"] == [{"name": "workers", "from": "1.34", "to": "1.36"}]
    assert check["plan"]["addons"]["update"] == [{"name": "kube-proxy", "from": "v1.34.2-eksbuild.3", "to": "v1.36.0"}]
    assert check["diff"]["before"]["version"] == "1.34" and check["diff"]["after"]["version"] == "1.36"

    fake.calls.clear()
    make_reconciler(fake, tmp_path, max_version_steps=2).present(config)
    assert mutating_of(fake) == [
        ["upgrade", "cluster", "--name", CLUSTER, *R, "--version", "1.35", "--approve"],
        ["upgrade", "cluster", "--name", CLUSTER, *R, "--version", "1.36", "--approve"],
        ["upgrade", "nodegroup", *C, "--name", "workers", "--kubernetes-version", "1.36"],
        ["update", "addon", *C, "--name", "kube-proxy", "--version", "v1.36.0", "--wait"],
        kubeconfig_write(tmp_path),
    ]
    assert fake.state["cluster"]["Version"] == "1.36"


def test_the_upgrade_path_from_1_33_to_the_pin_runs_one_minor_per_change_of_the_config(tmp_path: Path) -> None:
    """The rehearsal of docs/eks-cluster.md: 1.33 -> 1.34 -> 1.35 -> 1.36, each step a run of its own config."""
    assert config_at("1.36") == base_config(), "the path ends at the pin of infra/cluster.yaml"
    fake = FakeEksctl(live(desired(config_at("1.33"))))
    previous = UPGRADE_PATH["1.33"]
    for minor in ("1.34", "1.35", "1.36"):
        config = desired(config_at(minor))
        fake.calls.clear()
        check = make_reconciler(fake, tmp_path, check_mode=True).present(config)
        assert mutating_of(fake) == [] and check["plan"]["version_steps"] == [minor]

        fake.calls.clear()
        make_reconciler(fake, tmp_path).present(config)
        moved = [name for name, version in UPGRADE_PATH[minor].items() if version != previous[name]]
        assert mutating_of(fake) == [
            ["upgrade", "cluster", "--name", CLUSTER, *R, "--version", minor, "--approve"],
            ["upgrade", "nodegroup", *C, "--name", "workers", "--kubernetes-version", minor],
            *[["update", "addon", *C, "--name", n, "--version", UPGRADE_PATH[minor][n], "--wait"] for n in moved],
            kubeconfig_write(tmp_path),
        ], minor
        assert fake.state["cluster"]["Version"] == minor
        assert fake.state["nodegroups"]["workers"]["summary"]["Version"] == minor
        for name in moved:
            assert fake.state["addons"][name]["Version"] == ADDON_BUILDS[name][UPGRADE_PATH[minor][name]]
        previous = UPGRADE_PATH[minor]

    fake.calls.clear()
    assert make_reconciler(fake, tmp_path).present(desired())["changed"] is False
    assert mutating_of(fake) == [kubeconfig_write(tmp_path)]


def test_a_jump_of_two_minors_is_refused_before_anything_changes(tmp_path: Path) -> None:
    fake = FakeEksctl(live(desired(config_at("1.33"))))
    for check_mode in (True, False):
        with pytest.raises(EksError) as failure:
            make_reconciler(fake, tmp_path, check_mode=check_mode).present(desired(config_at("1.35")))
        assert failure.value.kind == "invalid"
        assert "asks for Kubernetes 1.35 but the cluster runs 1.33: that is 2 minor versions" in failure.value.msg
        assert "Nothing was changed. Fix: set metadata.version (or eks_cluster_kubernetes_version) to 1.34" in (
            failure.value.msg
        )
    assert mutating_of(fake) == [] and fake.state["cluster"]["Version"] == "1.33"


def test_a_newer_live_version_than_the_config_is_refused(tmp_path: Path) -> None:
    config = desired()
    fake = FakeEksctl(live(config, version="1.37"))
    with pytest.raises(EksError) as failure:
        make_reconciler(fake, tmp_path).present(config)
    assert "EKS cannot downgrade" in failure.value.msg and "1.37 or newer" in failure.value.msg
    assert mutating_of(fake) == []


def test_added_nodegroup_is_created_with_include(tmp_path: Path) -> None:
    config = desired()
    fake = FakeEksctl(live(config))
    source = base_config()
    extra = copy.deepcopy(source["managedNodeGroups"][0])
    extra.update(name="highmem", instanceTypes=["r5.4xlarge"])
    source["managedNodeGroups"].append(extra)

    result = make_reconciler(fake, tmp_path).present(desired(source))
    assert result["plan"]["nodegroups"]["create"] == ["highmem"]
    assert mutating_of(fake) == [
        ["create", "nodegroup", "--config-file", work(tmp_path, "cluster.yaml"), "--include", "highmem"],
        kubeconfig_write(tmp_path),
    ]
    assert sorted(fake.state["nodegroups"]) == ["highmem", "workers"]


def test_removed_nodegroup_is_drained_and_deleted_with_only_missing(tmp_path: Path) -> None:
    source = base_config()
    extra = copy.deepcopy(source["managedNodeGroups"][0])
    extra["name"] = "legacy"
    source["managedNodeGroups"].append(extra)
    fake = FakeEksctl(live(desired(source)))

    result = make_reconciler(fake, tmp_path).present(desired())
    assert result["plan"]["nodegroups"]["delete"] == ["legacy"]
    assert result["diff"]["before"]["nodegroups"].keys() == {"legacy", "workers"}
    assert result["diff"]["after"]["nodegroups"].keys() == {"workers"}
    assert mutating_of(fake) == [
        ["drain", "nodegroup", *C, "--name", "legacy", "--approve"],
        [
            "delete",
            "nodegroup",
            "--config-file",
            work(tmp_path, "cluster.yaml"),
            "--only-missing",
            "--approve",
            "--wait",
        ],
        kubeconfig_write(tmp_path),
    ]
    assert list(fake.state["nodegroups"]) == ["workers"]


def test_resized_nodegroup_is_scaled_in_place(tmp_path: Path) -> None:
    fake = FakeEksctl(live(desired()))
    result = make_reconciler(fake, tmp_path).present(desired(changed_config(maxSize=6, desiredCapacity=3)))
    assert result["plan"]["nodegroups"]["scale"] == [
        {
            "name": "workers",
            "from": {"minSize": 1, "maxSize": 4, "desiredCapacity": 2},
            "to": {"minSize": 1, "maxSize": 6, "desiredCapacity": 3},
        }
    ]
    assert mutating_of(fake)[0] == [
        "scale", "nodegroup", *C, "--name", "workers", "--nodes", "3", "--nodes-min", "1", "--nodes-max", "6",
    ]  # fmt: skip


@pytest.mark.parametrize("check_mode", [False, True])
def test_changed_immutable_nodegroup_fails_with_group_fields_and_fix(tmp_path: Path, check_mode: bool) -> None:
    fake = FakeEksctl(live(desired()))
    with pytest.raises(EksError) as failure:
        make_reconciler(fake, tmp_path, check_mode=check_mode).present(
            desired(changed_config(instanceTypes=["m5.2xlarge"], volumeSize=100))
        )
    message = failure.value.msg
    assert failure.value.kind == "immutable"
    assert "node group 'workers' (live: workers) cannot change in place" in message
    assert "instanceTypes r5.xlarge -> m5.2xlarge" in message and "volumeSize 50 -> 100" in message
    assert "Fix: either rename the group" in message and "nodegroup_changes=roll" in message
    assert mutating_of(fake) == []
    assert args_of(fake) == READS


def test_changed_label_is_detected_from_the_recorded_spec(tmp_path: Path) -> None:
    fake = FakeEksctl(live(desired()))
    with pytest.raises(EksError) as failure:
        make_reconciler(fake, tmp_path).present(desired(changed_config(labels={"role": "pipeline"})))
    assert "labels (recorded " in failure.value.msg
    assert mutating_of(fake) == []


def test_roll_creates_the_replacement_waits_then_drains_and_deletes_the_old_group(tmp_path: Path) -> None:
    fake = FakeEksctl(live(desired()))
    new = desired(changed_config(instanceTypes=["m5.2xlarge"]))
    replacement = replacement_name("workers", nodegroup_spec(new["managedNodeGroups"][0]))
    assert replacement.startswith("workers-") and len(replacement) == len("workers-") + 8

    check = make_reconciler(fake, tmp_path, check_mode=True, nodegroup_changes="roll").present(new)
    assert mutating_of(fake) == []
    assert check["plan"]["nodegroups"]["roll"] == [
        {
            "name": "workers",
            "live": ["workers"],
            "replacement": replacement,
            "fields": {"instanceTypes": {"from": "r5.xlarge", "to": "m5.2xlarge"}},
        }
    ]
    assert check["diff"]["after"]["nodegroups"].keys() == {replacement}

    fake.calls.clear()
    result = make_reconciler(fake, tmp_path, nodegroup_changes="roll").present(new)
    config_file = work(tmp_path, "cluster.yaml")
    assert args_of(fake)[len(READS) :] == [
        ["create", "nodegroup", "--config-file", config_file, "--include", replacement],
        ["get", "nodegroup", *C, "--name", replacement, "-o", "json"],
        ["drain", "nodegroup", *C, "--name", "workers", "--approve"],
        ["delete", "nodegroup", "--config-file", config_file, "--only-missing", "--approve", "--wait"],
        kubeconfig_write(tmp_path),
        *FINISH_READS,
    ]
    assert list(fake.state["nodegroups"]) == [replacement]
    assert result["nodegroups"][0]["instance_types"] == ["m5.2xlarge"]

    fake.calls.clear()
    again = make_reconciler(fake, tmp_path, nodegroup_changes="roll").present(new)
    assert again["changed"] is False and mutating_of(fake) == [kubeconfig_write(tmp_path)]


def replacement_stuck_at(status: str) -> tuple[FakeEksctl, dict, str]:
    """A fake whose roll replacement of `workers` stays in ``status``: (fake, new config, replacement name)."""
    fake = FakeEksctl(live(desired()))
    new = desired(changed_config(instanceTypes=["m5.2xlarge"]))
    replacement = replacement_name("workers", nodegroup_spec(new["managedNodeGroups"][0]))
    original = fake._create_nodegroup

    def create(args: list[str]) -> tuple[int, str, str]:
        outcome = original(args)
        fake.state["nodegroups"][replacement]["summary"]["Status"] = status
        return outcome

    fake._create_nodegroup = create  # type: ignore[method-assign]
    return fake, new, replacement


def test_roll_keeps_the_old_group_when_the_replacement_fails(tmp_path: Path) -> None:
    fake, new, replacement = replacement_stuck_at("CREATE_FAILED")
    with pytest.raises(EksError) as failure:
        make_reconciler(fake, tmp_path, nodegroup_changes="roll").present(new)
    assert f"replacement node group {replacement} is CREATE_FAILED" in failure.value.msg
    assert "capacity did not drop" in failure.value.msg
    assert [a[:2] for a in mutating_of(fake)] == [["create", "nodegroup"]]
    assert "workers" in fake.state["nodegroups"]


def test_a_replacement_that_never_becomes_active_stops_the_roll_after_the_timeout(tmp_path: Path) -> None:
    fake, new, replacement = replacement_stuck_at("CREATING")
    ticks = iter(range(1000))
    reconciler = make_reconciler(fake, tmp_path, nodegroup_changes="roll", wait_timeout=5, clock=lambda: next(ticks))
    with pytest.raises(EksError) as failure:
        reconciler.present(new)
    assert f"replacement node group {replacement} is CREATING after 5s" in failure.value.msg
    assert "the old group (workers) was kept" in failure.value.msg
    assert [a[:2] for a in mutating_of(fake)] == [["create", "nodegroup"]], "nothing drained or deleted"


def test_an_upgrade_leaving_nodes_more_than_three_minors_behind_is_refused_before_any_change(tmp_path: Path) -> None:
    config = desired()
    fake = FakeEksctl(live(config, version="1.32"))
    for check_mode in (True, False):
        with pytest.raises(EksError) as failure:
            make_reconciler(fake, tmp_path, check_mode=check_mode, max_version_steps=4).present(config)
        assert failure.value.kind == "invalid"
        assert "node group workers runs Kubernetes 1.32; the control plane cannot move to 1.36" in failure.value.msg
        assert "set the version to 1.35 first" in failure.value.msg
    assert mutating_of(fake) == [] and fake.state["cluster"]["Version"] == "1.32"


def test_a_run_after_a_crash_mid_roll_finishes_the_job(tmp_path: Path) -> None:
    new = desired(changed_config(instanceTypes=["m5.2xlarge"]))
    replacement = replacement_name("workers", nodegroup_spec(new["managedNodeGroups"][0]))
    state = live(desired())
    rolled = live(new)["nodegroups"]["workers"]
    rolled["summary"]["Name"] = replacement
    state["nodegroups"][replacement] = rolled
    fake = FakeEksctl(state)

    result = make_reconciler(fake, tmp_path).present(new)  # even without roll: nothing immutable is left
    assert result["plan"]["nodegroups"]["delete"] == ["workers"]
    assert [argv[:2] for argv in mutating_of(fake)[:2]] == [["drain", "nodegroup"], ["delete", "nodegroup"]]
    assert fake.state["drained"] == ["workers"]
    assert list(fake.state["nodegroups"]) == [replacement]


# -- access entries and authentication mode --------------------------------------------------------
def test_changed_access_entries_are_replaced_one_principal_at_a_time(tmp_path: Path) -> None:
    fake = FakeEksctl(live(desired(admins=("alice",), users=("bob", "carol"))))
    make_reconciler(fake, tmp_path).present(desired(admins=("alice", "bob", "carol"), users=()))
    assert mutating_of(fake) == [
        ["delete", "accessentry", *C, "--principal-arn", user("bob")],
        ["create", "accessentry", "--config-file", work(tmp_path, "accessentries-update-1.yaml")],
        ["delete", "accessentry", *C, "--principal-arn", user("carol")],
        ["create", "accessentry", "--config-file", work(tmp_path, "accessentries-update-2.yaml")],
        kubeconfig_write(tmp_path),
    ]
    for index, name in ((1, "bob"), (2, "carol")):
        entries = yaml.safe_load(Path(work(tmp_path, f"accessentries-update-{index}.yaml")).read_text())
        assert [e["principalARN"] for e in entries["accessConfig"]["accessEntries"]] == [user(name)]
    assert all(
        e["accessPolicies"][0]["policyARN"] == ADMIN
        for e in fake.state["access"].values()
        if "user/" in e["principalARN"]
    )


def test_access_entries_are_added_before_extra_users_are_removed(tmp_path: Path) -> None:
    state = live(desired(admins=("alice",), users=("bob", "carol")))
    fake = FakeEksctl(state)
    config = desired(admins=("alice", "bob", "dave"), users=())

    check = make_reconciler(fake, tmp_path, check_mode=True, keep_principals=[user("ci")]).present(config)
    assert check["plan"]["access_entries"] == {
        "add": [user("dave")],
        "update": [user("bob")],
        "remove": [user("carol")],
    }
    assert mutating_of(fake) == []
    after = check["diff"]["after"]["accessEntries"]
    assert after[user("bob")] == ["AmazonEKSClusterAdminPolicy"] and user("carol") not in after
    assert CREATOR_ROLE in after  # roles are never removed

    fake.calls.clear()
    make_reconciler(fake, tmp_path).present(config)
    assert mutating_of(fake) == [
        ["create", "accessentry", "--config-file", work(tmp_path, "accessentries-add.yaml")],
        ["delete", "accessentry", *C, "--principal-arn", user("bob")],
        ["create", "accessentry", "--config-file", work(tmp_path, "accessentries-update-1.yaml")],
        ["delete", "accessentry", *C, "--principal-arn", user("carol")],
        kubeconfig_write(tmp_path),
    ]
    access = fake.state["access"]
    assert access[user("bob")]["accessPolicies"][0]["policyARN"] == ADMIN
    assert set(access) == {user("alice"), user("bob"), user("dave"), CREATOR_ROLE} | {
        arn for arn in access if ":role/eksctl-" in arn
    }


def test_kept_principals_and_roles_are_never_removed(tmp_path: Path) -> None:
    state = live(desired(admins=("ci", "alice")))
    fake = FakeEksctl(state)
    result = make_reconciler(fake, tmp_path, check_mode=True, keep_principals=[user("ci")]).present(desired())
    assert result["plan"]["access_entries"]["remove"] == [user("alice")]


def test_config_map_cluster_moves_forward_adding_entries_before_api_mode(tmp_path: Path) -> None:
    config = desired(admins=("alice",))
    state = live(desired(), mode="CONFIG_MAP")
    state["access"] = {}
    fake = FakeEksctl(state)

    check = make_reconciler(fake, tmp_path, check_mode=True).present(config)
    assert ["get", "accessentry", *C, "-o", "json"] not in args_of(fake)  # disabled in CONFIG_MAP mode
    assert check["plan"]["authentication_mode_steps"] == ["API_AND_CONFIG_MAP", "API"]
    assert check["plan"]["access_entries"]["add"] == [user("alice")]

    fake.calls.clear()
    make_reconciler(fake, tmp_path).present(config)
    migrate = ["utils", "migrate-to-access-entry", *C, "--target-authentication-mode"]
    assert mutating_of(fake) == [
        [*migrate, "API_AND_CONFIG_MAP", "--approve"],
        ["create", "accessentry", "--config-file", work(tmp_path, "accessentries-add.yaml")],
        [*migrate, "API", "--approve"],
        kubeconfig_write(tmp_path),
    ]


def test_authentication_mode_never_moves_backward(tmp_path: Path) -> None:
    source = base_config()
    source["accessConfig"]["authenticationMode"] = "API_AND_CONFIG_MAP"
    fake = FakeEksctl(live(desired(), mode="API"))
    with pytest.raises(EksError) as failure:
        make_reconciler(fake, tmp_path).present(desired(source))
    assert "only moves forward (CONFIG_MAP -> API_AND_CONFIG_MAP -> API)" in failure.value.msg
    assert "Fix: set accessConfig.authenticationMode: API" in failure.value.msg
    assert mutating_of(fake) == []


# -- add-ons, OIDC, Fargate -----------------------------------------------------------------------
def test_missing_addon_oidc_and_fargate_profile_are_added_and_extra_profile_removed(tmp_path: Path) -> None:
    config = desired()
    state = live(config)
    del state["addons"]["eks-pod-identity-agent"]
    del state["fargate"]["pipeline"]
    state["fargate"]["old"] = {**state["fargate"]["worker"], "name": "old", "selectors": [{"namespace": "old-*"}]}
    state["oidc_associated"] = False
    fake = FakeEksctl(state)

    result = make_reconciler(fake, tmp_path).present(config)
    assert result["plan"]["oidc_provider"] == "associate"
    assert mutating_of(fake) == [
        ["create", "addon", *C, "--name", "eks-pod-identity-agent", "--version", "v1.3.10", "--wait"],
        ["utils", "associate-iam-oidc-provider", *C, "--approve"],
        ["create", "fargateprofile", "--config-file", work(tmp_path, "fargate.yaml")],
        ["delete", "fargateprofile", *C, "--name", "old", "--wait"],
        kubeconfig_write(tmp_path),
    ]
    assert sorted(fake.state["fargate"]) == ["pipeline", "worker"]


def test_changed_fargate_selectors_are_refused(tmp_path: Path) -> None:
    fake = FakeEksctl(live(desired()))
    source = base_config()
    source["fargateProfiles"][0]["selectors"] = [{"namespace": "workers-*"}]
    with pytest.raises(EksError) as failure:
        make_reconciler(fake, tmp_path).present(desired(source))
    assert "Fargate profile(s) 'worker' changed selectors" in failure.value.msg
    assert mutating_of(fake) == []


# -- errors -------------------------------------------------------------------------------------------
def test_expired_credentials_are_named_with_the_fix(tmp_path: Path) -> None:
    state = new_state()
    state["errors"] = [{"match": ["get", "cluster"], "stderr": EXPIRED}]
    fake = FakeEksctl(state)
    with pytest.raises(EksError) as failure:
        make_reconciler(fake, tmp_path).present(desired())
    assert failure.value.kind == "credentials"
    assert "ExpiredToken" in failure.value.msg and "Fix: log in again" in failure.value.msg
    assert mutating_of(fake) == []


def test_failed_command_reports_its_output_tail(tmp_path: Path) -> None:
    state = live(desired())
    state["errors"] = [
        {"match": ["get", "addon"], "stderr": "Error: failed to list addons: operation error EKS: ListAddons, boom\n"}
    ]
    fake = FakeEksctl(state)
    with pytest.raises(EksError) as failure:
        make_reconciler(fake, tmp_path).present(desired())
    assert f"`eksctl get addon --cluster {CLUSTER} --region eu-west-1 -o json` failed (exit 1)" in failure.value.msg
    assert "ListAddons, boom" in failure.value.msg


def test_kubernetes_version_unknown_to_this_eksctl_is_refused(tmp_path: Path) -> None:
    state = new_state()
    state["version"]["EKSServerSupportedVersions"] = ["1.33", "1.34", "1.35"]  # releases before 0.202.0 said so
    fake = FakeEksctl(state)
    with pytest.raises(EksError) as failure:
        make_reconciler(fake, tmp_path).present(desired())
    assert "supports Kubernetes 1.33, 1.34, 1.35, not 1.36. Fix: upgrade eksctl" in failure.value.msg


# -- absent -------------------------------------------------------------------------------------------
def test_absent_deletes_load_balancer_services_before_the_cluster(tmp_path: Path) -> None:
    fake = FakeEksctl(live(desired()))
    order: list[str] = []

    def cleaner(kubeconfig: str) -> list[str]:
        order.append("services")
        assert Path(kubeconfig).is_file()
        assert ["delete", "cluster", "--name", CLUSTER, *R, "--wait"] not in args_of(fake)
        return ["ingress-nginx/ingress-nginx-controller"]

    check = make_reconciler(fake, tmp_path, check_mode=True, lb_cleaner=cleaner).absent()
    assert check["plan"]["cluster"] == "delete" and check["changed"] is True and order == []
    assert mutating_of(fake) == []

    result = make_reconciler(fake, tmp_path, lb_cleaner=cleaner).absent()
    assert order == ["services"]
    assert mutating_of(fake) == [
        ["utils", "write-kubeconfig", *C, "--kubeconfig", work(tmp_path, "kubeconfig")],
        ["delete", "cluster", "--name", CLUSTER, *R, "--wait"],
    ]
    assert result["deleted_load_balancer_services"] == ["ingress-nginx/ingress-nginx-controller"]
    assert fake.state["cluster"] is None

    fake.calls.clear()
    again = make_reconciler(fake, tmp_path, lb_cleaner=cleaner).absent()
    assert again["changed"] is False and mutating_of(fake) == []


def test_a_self_managed_group_of_the_same_name_counts_as_an_immutable_change(tmp_path: Path) -> None:
    state = live(desired())
    state["nodegroups"]["workers"]["summary"]["Type"] = "unmanaged"
    fake = FakeEksctl(state)
    with pytest.raises(EksError) as failure:
        make_reconciler(fake, tmp_path).present(desired())
    assert "nodeGroupType unmanaged -> managed" in failure.value.msg
    assert mutating_of(fake) == []
