//! Where a node's containerd keeps its root and state, when its configuration moves them: the policy's
//! node layout must know them (its sandboxes' own files are there). Read from containerd's config.toml
//! (`containerd_config.rs`), written into the policy files (`handlers.rs`).

use std::path::PathBuf;

use strict_policy::config::NodeLayout;

/// containerd's `root` and `state` when its configuration moves them: its sandboxes' hostname, hosts,
/// resolv.conf and shm are below them, and the gate allows those only below the node layout's roots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerdDirs {
    pub root: Option<PathBuf>,
    pub state: Option<PathBuf>,
}

impl ContainerdDirs {
    /// The `[node]` table that adds the directories the policy's defaults lack, or None.
    pub fn node_table(&self) -> Option<String> {
        let defaults = NodeLayout::default();
        let add = |dir: &Option<PathBuf>, known: &[PathBuf]| {
            dir.as_ref()
                .filter(|dir| !known.contains(dir))
                .map(|dir| [known, std::slice::from_ref(dir)].concat())
        };
        let roots = add(&self.root, &defaults.containerd_roots);
        let states = add(&self.state, &defaults.containerd_states);
        if roots.is_none() && states.is_none() {
            return None;
        }
        let list = |dirs: &[PathBuf]| {
            dirs.iter()
                .map(|d| toml_edit::Value::from(d.display().to_string()).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut table = String::from(
            "\n# This node's containerd keeps its root or state outside the usual places (its config.toml):\n\
             # its sandboxes' own files there are the pods' own, the rest is protected as containerd's.\n\
             [node]\n",
        );
        if let Some(roots) = roots {
            table.push_str(&format!("containerd_roots = [{}]\n", list(&roots)));
        }
        if let Some(states) = states {
            table.push_str(&format!("containerd_states = [{}]\n", list(&states)));
        }
        Some(table)
    }

    /// Whether a policy's node layout covers these directories.
    pub fn covered_by(&self, node: &NodeLayout) -> bool {
        self.root
            .as_ref()
            .is_none_or(|r| node.containerd_roots.contains(r))
            && self
                .state
                .as_ref()
                .is_none_or(|s| node.containerd_states.contains(s))
    }
}
