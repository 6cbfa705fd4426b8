//! The annotations containerd's CRI writes into every spec (`internal/cri/annotations`): what a container is
//! and which pod it belongs to. Never used to grant anything: they only group and name.

pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
pub const POD_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
pub const POD_NAME: &str = "io.kubernetes.cri.sandbox-name";
pub const POD_UID: &str = "io.kubernetes.cri.sandbox-uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
pub const IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
pub const SANDBOX_IMAGE_NAME: &str = "io.kubernetes.cri.podsandbox.image-name";
pub const RUNTIME_HANDLER: &str = "io.kubernetes.cri.runtime-handler";
