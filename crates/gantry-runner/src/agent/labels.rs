//! What this machine offers jobs, as labels: capability detection, the labels a runner
//! registers with, and the `--platform LABEL=DIR` mapping that picks a job's root file system.
//!
//! Labels, in order: the hosted Linux labels (`ubuntu-latest`, `ubuntu-24.04`, `ubuntu-22.04`),
//! then `linux`, the architecture (`x64`, `arm64`, or Rust's name for others), `gpu` when an
//! NVIDIA device or `nvidia-smi` is found, then every `--platform` label, then `--labels`.
//! `--labels` adds to the defaults rather than replacing them, because a runner that forgot
//! `linux` would silently stop matching most jobs; a label written `-NAME` removes a default
//! instead (e.g. `--labels -ubuntu-22.04,big-disk`). Duplicates are dropped case-insensitively,
//! as the server compares labels. `self-hosted` is not added here: the server adds it to an
//! organization's runners. CPU count and memory are detected for the runner's log only: GitHub
//! has no labels for them, and a job asks for a bigger machine by a label such as `big-disk`.

use std::path::{Path, PathBuf};

/// The hosted labels every runner offers by default: jobs written for GitHub's Ubuntu runners
/// run here unchanged.
pub const HOSTED_LABELS: [&str; 3] = ["ubuntu-latest", "ubuntu-24.04", "ubuntu-22.04"];

/// What was found out about this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The operating system label (`linux`).
    pub os: String,
    /// The architecture label (`x64`, `arm64`, ...).
    pub arch: String,
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// Total memory in bytes, when `/proc/meminfo` says.
    pub memory_bytes: Option<u64>,
    /// Whether an NVIDIA GPU seems usable.
    pub gpu: bool,
}

impl Capabilities {
    /// Looks at this machine.
    pub fn detect() -> Capabilities {
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| memory_from_meminfo(&text));
        let path = std::env::var_os("PATH").unwrap_or_default();
        let gpu = Path::new("/dev/nvidia0").exists()
            || std::env::split_paths(&path).any(|dir| dir.join("nvidia-smi").is_file());
        Capabilities {
            os: std::env::consts::OS.to_owned(),
            arch: arch_label(std::env::consts::ARCH).to_owned(),
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            memory_bytes,
            gpu,
        }
    }
}

/// GitHub's label for a Rust architecture name (`x86_64` → `x64`, `aarch64` → `arm64`).
pub fn arch_label(arch: &str) -> &str {
    match arch {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm",
        other => other,
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn memory_from_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
    let mut fields = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    let factor = match fields.next() {
        Some("kB") | Some("KB") => 1024,
        Some("mB") | Some("MB") => 1024 * 1024,
        None => 1,
        Some(_) => return None,
    };
    value.checked_mul(factor)
}

/// A `--platform LABEL=DIR` mapping: jobs whose `runs-on` contains `label` run on the root
/// file system in `root` instead of the host's `/usr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// The label.
    pub label: String,
    /// The root file system directory (an unpacked image).
    pub root: PathBuf,
}

impl std::str::FromStr for Platform {
    type Err = String;

    /// Parses `LABEL=DIR`.
    fn from_str(text: &str) -> Result<Platform, String> {
        let (label, root) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}` is not LABEL=DIR"))?;
        let label = label.trim();
        if label.is_empty() || root.is_empty() {
            return Err(format!("`{text}` is not LABEL=DIR"));
        }
        if label.contains(',') || label.starts_with('-') {
            return Err(format!("`{label}` is not a label"));
        }
        Ok(Platform {
            label: label.to_owned(),
            root: PathBuf::from(root),
        })
    }
}

impl Platform {
    /// Whether a job with these `runs-on` labels asks for this platform (labels compare
    /// case-insensitively, as on the server).
    pub fn matches(&self, runs_on: &[String]) -> bool {
        runs_on
            .iter()
            .any(|label| label.eq_ignore_ascii_case(&self.label))
    }
}

/// The platform a job with `runs_on` labels gets: the first mapping (in the order given) whose
/// label it asks for; `None` means the default base root.
pub fn choose_platform<'a>(platforms: &'a [Platform], runs_on: &[String]) -> Option<&'a Platform> {
    platforms.iter().find(|platform| platform.matches(runs_on))
}

/// The labels a runner registers with (see the module docs for the order and `--labels`).
pub fn runner_labels(
    capabilities: &Capabilities,
    platforms: &[Platform],
    extra: &[String],
) -> Vec<String> {
    let mut labels: Vec<String> = HOSTED_LABELS
        .iter()
        .map(|label| label.to_string())
        .collect();
    labels.push(capabilities.os.clone());
    labels.push(capabilities.arch.clone());
    if capabilities.gpu {
        labels.push("gpu".to_owned());
    }
    labels.extend(platforms.iter().map(|platform| platform.label.clone()));
    for label in extra.iter().map(|label| label.trim()) {
        if let Some(removed) = label.strip_prefix('-') {
            labels.retain(|kept| !kept.eq_ignore_ascii_case(removed));
        } else if !label.is_empty() {
            labels.push(label.to_owned());
        }
    }
    let mut unique: Vec<String> = Vec::with_capacity(labels.len());
    for label in labels {
        if !unique.iter().any(|kept| kept.eq_ignore_ascii_case(&label)) {
            unique.push(label);
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(arch: &str, gpu: bool) -> Capabilities {
        Capabilities {
            os: "linux".to_owned(),
            arch: arch_label(arch).to_owned(),
            cpus: 2,
            memory_bytes: None,
            gpu,
        }
    }

    fn strings(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|label| label.to_string()).collect()
    }

    #[test]
    fn default_labels_are_the_hosted_linux_ones() {
        assert_eq!(
            runner_labels(&machine("x86_64", false), &[], &[]),
            strings(&[
                "ubuntu-latest",
                "ubuntu-24.04",
                "ubuntu-22.04",
                "linux",
                "x64"
            ])
        );
        assert_eq!(
            runner_labels(&machine("aarch64", true), &[], &[]),
            strings(&[
                "ubuntu-latest",
                "ubuntu-24.04",
                "ubuntu-22.04",
                "linux",
                "arm64",
                "gpu"
            ])
        );
    }

    #[test]
    fn extra_labels_add_and_minus_removes() {
        let platforms = ["ubuntu-20.04=/roots/focal".parse::<Platform>().unwrap()];
        assert_eq!(
            runner_labels(
                &machine("x86_64", false),
                &platforms,
                &strings(&["big-disk", "-ubuntu-22.04", "LINUX", " ", "-nothing"])
            ),
            strings(&[
                "ubuntu-latest",
                "ubuntu-24.04",
                "linux",
                "x64",
                "ubuntu-20.04",
                "big-disk"
            ])
        );
    }

    #[test]
    fn platforms_parse_and_match_case_insensitively_in_order() {
        let platforms: Vec<Platform> = ["ubuntu-22.04=/roots/jammy", "gpu=/roots/cuda"]
            .iter()
            .map(|text| text.parse().unwrap())
            .collect();
        let chosen = |runs_on: &[&str]| {
            choose_platform(&platforms, &strings(runs_on)).map(|p| p.root.display().to_string())
        };
        assert_eq!(chosen(&["Ubuntu-22.04"]).as_deref(), Some("/roots/jammy"));
        assert_eq!(
            chosen(&["gpu", "ubuntu-22.04"]).as_deref(),
            Some("/roots/jammy")
        );
        assert_eq!(chosen(&["linux", "gpu"]).as_deref(), Some("/roots/cuda"));
        assert_eq!(chosen(&["ubuntu-latest"]), None);
        for bad in ["noequals", "=/dir", "label=", "-x=/dir"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_comes_from_mem_total() {
        let meminfo = "MemTotal:       16318412 kB\nMemFree:         1234 kB\n";
        assert_eq!(memory_from_meminfo(meminfo), Some(16318412 * 1024));
        assert_eq!(memory_from_meminfo("MemFree: 1 kB\n"), None);
        assert_eq!(memory_from_meminfo("MemTotal: lots kB\n"), None);
        assert!(Capabilities::detect().cpus >= 1);
    }

    #[test]
    fn arch_labels_follow_github() {
        assert_eq!(arch_label("x86_64"), "x64");
        assert_eq!(arch_label("aarch64"), "arm64");
        assert_eq!(arch_label("riscv64"), "riscv64");
    }
}
