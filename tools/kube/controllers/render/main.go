// Command render writes, from Go module sources only, two files the local stack needs beside the
// binaries of this module (tools/kube/build.sh runs it after the build):
//
//   - Flux's install manifest, built the way a Flux release builds install.yaml: kustomize over
//     flux2's manifests/install, whose per-controller bases name each controller release's
//     <name>.crds.yaml and <name>.deployment.yaml assets. A controller release renders those two
//     assets from its own config/crd and config/manager; this command renders them from the
//     controller's module source instead of downloading them, so the result has the release's
//     structure (Namespace, CRDs, ServiceAccounts, RBAC, NetworkPolicies, a Deployment per
//     controller) with the images of the modules given.
//   - KWOK's stages (kustomize/stage/fast of the kwok module: node initialise, node heartbeat with
//     lease, pod ready/complete/delete), the stages kwokctl gives its controller by default.
//
// Usage:
//
//	render -flux2 DIR -component NAME=DIR... -install OUT -kwok DIR -stages OUT
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// a controller release asset named by a base of flux2's manifests/bases
var releaseAsset = regexp.MustCompile(`^https://github\.com/fluxcd/([a-z-]+)/releases/download/(v[0-9][^/]*)/([a-z-]+)\.(crds|deployment)\.yaml$`)

// the folder of a controller's module that its release renders each asset from
var assetSource = map[string]string{"crds": "config/crd", "deployment": "config/manager"}

type components map[string]string

func (c components) String() string { return fmt.Sprint(map[string]string(c)) }

func (c components) Set(value string) error {
	name, dir, ok := strings.Cut(value, "=")
	if !ok || name == "" || dir == "" {
		return fmt.Errorf("want NAME=DIR, got %q", value)
	}
	c[name] = dir
	return nil
}

func main() {
	flux2 := flag.String("flux2", "", "the flux2 module's folder (its manifests/ tree)")
	install := flag.String("install", "", "where to write the install manifest")
	kwok := flag.String("kwok", "", "the kwok module's folder")
	stages := flag.String("stages", "", "where to write KWOK's stages")
	sources := components{}
	flag.Var(sources, "component", "NAME=DIR: the module folder of the controller NAME (repeatable)")
	flag.Parse()
	if *flux2 == "" || *install == "" || *kwok == "" || *stages == "" {
		fail(errors.New("-flux2, -install, -kwok and -stages are required"))
	}
	manifest, err := installManifest(*flux2, sources)
	if err != nil {
		fail(err)
	}
	if err := writeFile(*install, manifest); err != nil {
		fail(err)
	}
	stageYAML, err := build(filesys.MakeFsOnDisk(), filepath.Join(*kwok, "kustomize", "stage", "fast"))
	if err != nil {
		fail(fmt.Errorf("KWOK stages: %w", err))
	}
	if err := writeFile(*stages, stageYAML); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "render: %v\n", err)
	os.Exit(1)
}

// build runs kustomize (the library the kustomize CLI is made of) over one folder, as `kustomize
// build` does: resources in kustomize's legacy order (Namespaces, CRDs, ServiceAccounts and RBAC
// before the workloads that use them) unless the kustomization sets its own.
func build(fsys filesys.FileSystem, dir string) ([]byte, error) {
	options := krusty.MakeDefaultOptions()
	options.Reorder = krusty.ReorderOptionUnspecified
	resources, err := krusty.MakeKustomizer(options).Run(fsys, dir)
	if err != nil {
		return nil, err
	}
	return resources.AsYaml()
}

// installManifest copies flux2's manifests/ into memory, replaces every controller release asset
// its bases name by the same asset rendered from the controller's module, and builds manifests/install.
func installManifest(flux2 string, sources components) ([]byte, error) {
	mem := filesys.MakeFsInMemory()
	root := filepath.Join(flux2, "manifests")
	if err := copyTree(root, mem, "/manifests"); err != nil {
		return nil, fmt.Errorf("reading %s: %w", root, err)
	}
	bases, err := mem.ReadDir("/manifests/bases")
	if err != nil {
		return nil, err
	}
	sort.Strings(bases)
	used := map[string]bool{}
	for _, base := range bases {
		if err := localiseBase(mem, "/manifests/bases/"+base, sources, used); err != nil {
			return nil, fmt.Errorf("manifests/bases/%s: %w", base, err)
		}
	}
	for name := range sources {
		if !used[name] {
			return nil, fmt.Errorf("-component %s: no base of flux2's manifests names this controller", name)
		}
	}
	return build(mem, "/manifests/install")
}

func localiseBase(mem filesys.FileSystem, dir string, sources components, used map[string]bool) error {
	path := dir + "/kustomization.yaml"
	raw, err := mem.ReadFile(path)
	if err != nil {
		return err
	}
	var kustomization map[string]any
	if err := yaml.Unmarshal(raw, &kustomization); err != nil {
		return err
	}
	resources, _ := kustomization["resources"].([]any)
	for i, entry := range resources {
		resource, _ := entry.(string)
		if !strings.Contains(resource, "://") {
			continue
		}
		match := releaseAsset.FindStringSubmatch(resource)
		if match == nil || match[1] != match[3] {
			return fmt.Errorf("remote resource %s is not a controller release asset this command can render", resource)
		}
		name, released, kind := match[1], match[2], match[4]
		source, ok := sources[name]
		if !ok {
			return fmt.Errorf("no -component %s=DIR for %s", name, resource)
		}
		used[name] = true
		rendered, err := build(filesys.MakeFsOnDisk(), filepath.Join(source, assetSource[kind]))
		if err != nil {
			return fmt.Errorf("rendering %s from %s: %w", resource, source, err)
		}
		file := fmt.Sprintf("%s.%s.yaml", name, kind)
		if err := mem.WriteFile(dir+"/"+file, rendered); err != nil {
			return err
		}
		resources[i] = file
		fmt.Fprintf(os.Stderr, "render: %s %s.yaml (flux2 names %s) from %s\n", name, kind, released, source)
	}
	out, err := yaml.Marshal(kustomization)
	if err != nil {
		return err
	}
	return mem.WriteFile(path, out)
}

func copyTree(src string, mem filesys.FileSystem, dst string) error {
	return filepath.WalkDir(src, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.ToSlash(filepath.Join(dst, rel))
		if entry.IsDir() {
			return mem.MkdirAll(target)
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile(target, content)
	})
}

func writeFile(path string, content []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
