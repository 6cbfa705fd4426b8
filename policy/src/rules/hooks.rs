//! OCI hooks run on the host, outside every confinement: only the configured executables may appear.

use oci_spec::runtime::{Hook, Spec};

use super::evaluation::Evaluation;
use crate::verdict::Violation;

pub(crate) fn check(spec: &Spec, ev: &mut Evaluation) {
    let Some(hooks) = spec.hooks() else { return };
    #[allow(deprecated)] // prestart is deprecated in the runtime spec, but runc still runs it
    let kinds: [(&str, &Option<Vec<Hook>>); 6] = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (kind, list) in kinds {
        for (index, hook) in list.iter().flatten().enumerate() {
            let path = hook.path();
            if ev
                .perms
                .config
                .allowed_hooks
                .iter()
                .any(|allowed| allowed == path)
            {
                continue;
            }
            let field = format!("hooks.{kind}[{index}]");
            ev.refuse(
                Violation::new(
                    "hook",
                    format!("{field}.path"),
                    path.display().to_string(),
                    format!("{field} would run {} on the host", path.display()),
                )
                .remedy("hooks run outside every confinement; list it in allowed_hooks in the configuration to allow it"),
            );
        }
    }
}
