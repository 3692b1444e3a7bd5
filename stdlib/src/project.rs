//! Where plugins come from and what they must be: the project's `plugins/` folder, the plugin
//! path, git repositories declared in `cairn.toml`, and the `cairn.lock` that pins each
//! plugin's source, version and content hash.
//!
//! Git plugins are fetched with the `git` command into a cache (`$CAIRN_CACHE_DIR/plugins`,
//! else `~/.cache/cairn/plugins`): a bare clone per repository and one exported tree per
//! commit. A plugin that is locked and already in the cache never runs git. Evaluation never
//! writes `cairn.lock`; `cairn plugin update` does.

use cairn_model::Code;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::{Manifest, PluginError};

/// The project file next to the scripts (or above them).
pub const CONFIG_FILE: &str = "cairn.toml";
/// The lock file beside it.
pub const LOCK_FILE: &str = "cairn.lock";

/// `cairn.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Plugins from elsewhere, by import name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginDecl>,
}

/// A plugin declared in `cairn.toml`: `{ git = URL, tag = T | rev = COMMIT, path = SUBDIR }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDecl {
    /// The repository (any URL `git clone` takes; `file://` for local ones).
    pub git: String,
    /// A tag to check out.
    pub tag: Option<String>,
    /// A commit (or any revision) to check out.
    pub rev: Option<String>,
    /// The plugin's folder inside the repository (the repository's root if absent).
    pub path: Option<String>,
}

impl PluginDecl {
    /// The revision to resolve: `refs/tags/T`, the given rev, or `HEAD`.
    fn reference(&self) -> String {
        match (&self.tag, &self.rev) {
            (Some(tag), _) => format!("refs/tags/{tag}"),
            (None, Some(rev)) => rev.clone(),
            (None, None) => "HEAD".to_owned(),
        }
    }
}

/// `cairn.lock`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Each plugin the project can import, by name.
    #[serde(default)]
    pub plugins: BTreeMap<String, LockEntry>,
}

/// One locked plugin.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    /// The plugin's version from its manifest (`""` without one).
    pub version: String,
    /// `dir` or `git`.
    pub source: String,
    /// For `dir`: the folder (relative to the project when inside it). For `git`: the folder
    /// inside the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The repository URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<String>,
    /// The tag declared in `cairn.toml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The revision declared in `cairn.toml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
    /// The commit the declaration resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `sha256:` of the plugin folder's content ([`content_hash`]).
    pub hash: String,
}

impl LockEntry {
    fn matches(&self, decl: &PluginDecl) -> bool {
        self.source == "git"
            && self.git.as_deref() == Some(decl.git.as_str())
            && self.tag == decl.tag
            && self.rev == decl.rev
            && self.path == decl.path
    }
}

impl Lock {
    /// Reads `cairn.lock` in `root`, if there is one.
    pub fn read(root: &Path) -> Result<Option<Self>, PluginError> {
        let file = root.join(LOCK_FILE);
        if !file.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&file).map_err(|e| {
            PluginError::new(
                Code::InvalidLock,
                format!("cannot read {}: {e}", file.display()),
            )
        })?;
        toml::from_str(&text).map(Some).map_err(|e| {
            PluginError::new(
                Code::InvalidLock,
                format!(
                    "invalid {}: {}",
                    file.display(),
                    e.message().trim_end_matches('.')
                ),
            )
            .help("run `cairn plugin update` to write it again")
        })
    }

    /// The text of the lock file.
    pub fn to_text(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# Written by `cairn plugin update`: each plugin's source and content hash.\n\n{body}"
        )
    }
}

/// A project: the folder holding `cairn.toml` or `plugins/`, its configuration and lock.
#[derive(Debug, Clone, Default)]
pub struct Project {
    /// The project's root.
    pub root: PathBuf,
    /// `cairn.toml` (empty when there is none).
    pub config: ProjectConfig,
    /// `cairn.lock`, when there is one.
    pub lock: Option<Lock>,
}

impl Project {
    /// The project that `start` (a script or a folder) belongs to: the nearest ancestor with a
    /// `cairn.toml` or a `plugins/` folder.
    pub fn find(start: &Path) -> Result<Option<Self>, PluginError> {
        let Ok(start) = std::path::absolute(start) else {
            return Ok(None);
        };
        let mut dir = if start.is_dir() {
            Some(start.as_path())
        } else {
            start.parent()
        };
        while let Some(d) = dir {
            if d.join(CONFIG_FILE).is_file() || d.join("plugins").is_dir() {
                return Self::open(d).map(Some);
            }
            dir = d.parent();
        }
        Ok(None)
    }

    /// The project rooted at `root`.
    pub fn open(root: &Path) -> Result<Self, PluginError> {
        let file = root.join(CONFIG_FILE);
        let config =
            if file.is_file() {
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    PluginError::new(
                        Code::InvalidProjectConfig,
                        format!("cannot read {}: {e}", file.display()),
                    )
                })?;
                let config: ProjectConfig = toml::from_str(&text).map_err(|e| {
                    PluginError::new(
                        Code::InvalidProjectConfig,
                        format!(
                            "invalid {}: {}",
                            file.display(),
                            e.message().trim_end_matches('.')
                        ),
                    )
                })?;
                for (name, decl) in &config.plugins {
                    if decl.git.starts_with('-') || decl.git.is_empty() {
                        return Err(PluginError::new(
                            Code::InvalidProjectConfig,
                            format!("{}: plugin `{name}` has an invalid git URL", file.display()),
                        ));
                    }
                    if decl.tag.is_some() && decl.rev.is_some() {
                        return Err(PluginError::new(
                            Code::InvalidProjectConfig,
                            format!(
                                "{}: plugin `{name}` gives both a tag and a rev",
                                file.display()
                            ),
                        ));
                    }
                    if decl.path.as_deref().is_some_and(|p| {
                        Path::new(p).is_absolute() || p.split('/').any(|c| c == "..")
                    }) {
                        return Err(PluginError::new(
                            Code::InvalidProjectConfig,
                            format!(
                                "{}: the path of plugin `{name}` must stay inside its repository",
                                file.display()
                            ),
                        ));
                    }
                }
                config
            } else {
                ProjectConfig::default()
            };
        Ok(Self {
            root: root.to_path_buf(),
            config,
            lock: Lock::read(root)?,
        })
    }
}

/// Where a located plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A folder: the project's `plugins/` or the plugin path.
    Dir,
    /// A git repository declared in `cairn.toml`, at a commit.
    Git {
        /// The declaration.
        decl: PluginDecl,
        /// The commit it resolved to.
        commit: String,
    },
}

/// A plugin found on disk.
#[derive(Debug, Clone)]
pub struct Located {
    /// The import name.
    pub name: String,
    /// Its folder (holding `main.rhai`).
    pub dir: PathBuf,
    /// Where it came from.
    pub source: Source,
    /// How its folder is shown: `plugins/postgres`, or the repository and commit.
    pub display: String,
}

impl Located {
    /// How one of its files is shown in diagnostics.
    pub fn file_display(&self, file: &str) -> String {
        format!("{}/{file}", self.display)
    }

    /// Its lock entry, with the content hash of its folder as it is now.
    pub fn lock_entry(&self, root: Option<&Path>) -> Result<LockEntry, PluginError> {
        let manifest = Manifest::read(&self.dir, &self.file_display("plugin.toml"), &self.name)?;
        let hash = content_hash(&self.dir).map_err(|e| {
            PluginError::new(
                Code::PluginUnreadable,
                format!("cannot read plugin `{}`: {e}", self.name),
            )
        })?;
        let version = manifest.map(|m| m.version).unwrap_or_default();
        Ok(match &self.source {
            Source::Dir => LockEntry {
                version,
                source: "dir".to_owned(),
                path: Some(
                    root.and_then(|r| self.dir.strip_prefix(r).ok())
                        .unwrap_or(&self.dir)
                        .to_string_lossy()
                        .replace('\\', "/"),
                ),
                git: None,
                tag: None,
                rev: None,
                commit: None,
                hash,
            },
            Source::Git { decl, commit } => LockEntry {
                version,
                source: "git".to_owned(),
                path: decl.path.clone(),
                git: Some(decl.git.clone()),
                tag: decl.tag.clone(),
                rev: decl.rev.clone(),
                commit: Some(commit.clone()),
                hash,
            },
        })
    }
}

/// Where plugins are looked up, in order: `cairn.toml` declarations, the project's
/// `plugins/`, then the plugin path.
#[derive(Debug, Clone, Default)]
pub struct PluginSearch {
    /// The project, if the script belongs to one.
    pub project: Option<Project>,
    /// More folders holding plugin folders (`CAIRN_PLUGIN_PATH`, `--plugin-path`).
    pub dirs: Vec<PathBuf>,
    /// The cache root for git plugins (`$CAIRN_CACHE_DIR`, else `~/.cache/cairn`).
    pub cache_dir: Option<PathBuf>,
}

impl PluginSearch {
    /// Folders searched for plugin folders, in order.
    fn all_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .project
            .iter()
            .map(|p| p.root.join("plugins"))
            .collect();
        dirs.extend(self.dirs.iter().cloned());
        dirs
    }

    /// Finds the plugin `name`; `Ok(None)` when no source has it. Git plugins are fetched
    /// when they are not in the cache, or when `refresh` asks to resolve their tag again.
    pub fn locate(&self, name: &str, refresh: bool) -> Result<Option<Located>, PluginError> {
        if let Some(project) = &self.project
            && let Some(decl) = project.config.plugins.get(name)
        {
            let locked = project
                .lock
                .as_ref()
                .and_then(|l| l.plugins.get(name))
                .filter(|e| e.matches(decl))
                .and_then(|e| e.commit.clone())
                .filter(|_| !refresh);
            return self.fetch_git(name, decl, locked, refresh).map(Some);
        }
        for dir in self.all_dirs() {
            let folder = dir.join(name);
            if folder.join("main.rhai").is_file() {
                let base = dir.parent().unwrap_or(&dir);
                let display = folder
                    .strip_prefix(base)
                    .unwrap_or(&folder)
                    .to_string_lossy()
                    .replace('\\', "/");
                return Ok(Some(Located {
                    name: name.to_owned(),
                    dir: folder,
                    source: Source::Dir,
                    display,
                }));
            }
        }
        Ok(None)
    }

    /// Every plugin visible to the project, by name (the first source that has a name wins).
    pub fn all(&self, refresh: bool) -> Result<Vec<Located>, PluginError> {
        let mut names = std::collections::BTreeSet::new();
        if let Some(project) = &self.project {
            names.extend(project.config.plugins.keys().cloned());
        }
        for dir in self.all_dirs() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.path().join("main.rhai").is_file() {
                    names.insert(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        let mut found = Vec::new();
        for name in names {
            if let Some(located) = self.locate(&name, refresh)? {
                found.push(located);
            }
        }
        Ok(found)
    }

    fn fetch_git(
        &self,
        name: &str,
        decl: &PluginDecl,
        locked: Option<String>,
        refresh: bool,
    ) -> Result<Located, PluginError> {
        let fail = |message: String| {
            PluginError::new(
                Code::PluginFetchFailed,
                format!("plugin `{name}`: {message}"),
            )
        };
        let git_fail = |e: GitError| fail(e.to_string());
        let cache = self
            .cache_dir
            .as_ref()
            .ok_or_else(|| {
                fail(format!(
                    "no cache directory to fetch {} into (set CAIRN_CACHE_DIR or HOME)",
                    decl.git
                ))
            })?
            .join("plugins");
        let key = repo_key(&decl.git);
        let checkouts = cache.join("checkouts").join(&key);
        let located = |commit: String| located_at(name, decl, &checkouts, commit);
        // Locked and cached: no git at all.
        if let Some(commit) = &locked
            && checkouts.join(commit).is_dir()
        {
            return Ok(located(commit.clone()));
        }
        let git = Git {
            bare: cache.join("repos").join(format!("{key}.git")),
        };
        let commit =
            resolve_commit(&git, decl, locked.as_deref(), refresh).map_err(|e| match e {
                Resolve::Git(e) => git_fail(e),
                Resolve::Missing => fail(format!(
                    "{} has no {}",
                    decl.git,
                    describe_ref(decl, locked.as_deref())
                )),
            })?;
        let target = checkouts.join(&commit);
        if !target.is_dir() {
            git.export(&commit, &target).map_err(git_fail)?;
        }
        let found = located(commit);
        if !found.dir.join("main.rhai").is_file() {
            let within = decl
                .path
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(|p| format!(" in {p}/"))
                .unwrap_or_default();
            return Err(fail(format!("{} has no main.rhai{within}", decl.git)));
        }
        Ok(found)
    }
}

/// A git plugin at `commit`, exported under `checkouts`.
fn located_at(name: &str, decl: &PluginDecl, checkouts: &Path, commit: String) -> Located {
    let subdir = decl.path.clone().unwrap_or_default();
    let root = checkouts.join(&commit);
    Located {
        name: name.to_owned(),
        dir: if subdir.is_empty() {
            root.clone()
        } else {
            root.join(&subdir)
        },
        display: format!(
            "{}@{}{}",
            decl.git,
            &commit[..commit.len().min(12)],
            if subdir.is_empty() {
                String::new()
            } else {
                format!("/{subdir}")
            }
        ),
        source: Source::Git {
            decl: decl.clone(),
            commit,
        },
    }
}

/// Why a plugin's commit could not be resolved.
enum Resolve {
    /// git failed.
    Git(GitError),
    /// The repository has no such tag, revision or commit.
    Missing,
}

/// The commit a declaration (or its lock) names: cloned when not cached, fetched when asked
/// to refresh or when the cached clone does not have it.
fn resolve_commit(
    git: &Git,
    decl: &PluginDecl,
    locked: Option<&str>,
    refresh: bool,
) -> Result<String, Resolve> {
    let mut fetched = false;
    if !git.bare.is_dir() {
        git.clone_bare(&decl.git).map_err(Resolve::Git)?;
        fetched = true;
    } else if refresh {
        git.fetch(&decl.git).map_err(Resolve::Git)?;
        fetched = true;
    }
    let wanted = locked.map_or_else(|| decl.reference(), str::to_owned);
    match git.resolve(&wanted) {
        Some(c) => Ok(c),
        None if !fetched => {
            git.fetch(&decl.git).map_err(Resolve::Git)?;
            git.resolve(&wanted).ok_or(Resolve::Missing)
        }
        None => Err(Resolve::Missing),
    }
}

fn describe_ref(decl: &PluginDecl, locked: Option<&str>) -> String {
    match (locked, &decl.tag, &decl.rev) {
        (Some(commit), ..) => format!("commit {commit} (from cairn.lock)"),
        (None, Some(tag), _) => format!("tag {tag}"),
        (None, None, Some(rev)) => format!("revision {rev}"),
        (None, None, None) => "HEAD".to_owned(),
    }
}

/// A cache folder name for a repository URL: its last path segment and a hash.
fn repo_key(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let last: String = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("repo")
        .trim_end_matches(".git")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("{last}-{short}")
}

/// A failure of the `git` command or of the cache folders around it.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started.
    #[error("cannot run git (is it installed?): {0}")]
    Spawn(#[source] std::io::Error),
    /// git ran and failed.
    #[error("git {command} failed: {stderr}")]
    Failed {
        /// Its first argument.
        command: String,
        /// What it printed on stderr, trimmed.
        stderr: String,
    },
    /// A cache folder could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A finished clone or checkout could not be moved into place.
    #[error("cannot move the {what} into {}: {source}", path.display())]
    Publish {
        /// `clone` or `checkout`.
        what: &'static str,
        /// Where it was to go.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The `git` command on one bare repository of the cache.
struct Git {
    bare: PathBuf,
}

impl Git {
    fn run(args: &[&std::ffi::OsStr], index: Option<&Path>) -> Result<String, GitError> {
        let mut cmd = Command::new("git");
        cmd.args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE");
        if let Some(index) = index {
            cmd.env("GIT_INDEX_FILE", index);
        }
        let out = cmd.output().map_err(GitError::Spawn)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(GitError::Failed {
                command: args
                    .first()
                    .map(|a| a.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                stderr: err.trim().to_owned(),
            })
        }
    }

    fn git_dir(&self) -> std::ffi::OsString {
        let mut s = std::ffi::OsString::from("--git-dir=");
        s.push(&self.bare);
        s
    }

    fn clone_bare(&self, url: &str) -> Result<(), GitError> {
        let parent = self.bare.parent().unwrap_or(&self.bare);
        std::fs::create_dir_all(parent).map_err(|source| GitError::Create {
            path: parent.to_owned(),
            source,
        })?;
        let tmp = self
            .bare
            .with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        Self::run(
            &[
                "clone".as_ref(),
                "--bare".as_ref(),
                "--quiet".as_ref(),
                "--".as_ref(),
                url.as_ref(),
                tmp.as_os_str(),
            ],
            None,
        )?;
        publish(&tmp, &self.bare).map_err(|source| GitError::Publish {
            what: "clone",
            path: self.bare.clone(),
            source,
        })
    }

    fn fetch(&self, url: &str) -> Result<(), GitError> {
        Self::run(
            &[
                self.git_dir().as_os_str(),
                "fetch".as_ref(),
                "--quiet".as_ref(),
                "--force".as_ref(),
                "--".as_ref(),
                url.as_ref(),
                "+refs/heads/*:refs/heads/*".as_ref(),
                "+refs/tags/*:refs/tags/*".as_ref(),
            ],
            None,
        )
        .map(|_| ())
    }

    fn resolve(&self, reference: &str) -> Option<String> {
        if reference.starts_with('-') {
            return None;
        }
        Self::run(
            &[
                self.git_dir().as_os_str(),
                "rev-parse".as_ref(),
                "--verify".as_ref(),
                "--quiet".as_ref(),
                format!("{reference}^{{commit}}").as_ref(),
            ],
            None,
        )
        .ok()
        .filter(|c| c.len() >= 40 && c.chars().all(|ch| ch.is_ascii_hexdigit()))
    }

    /// Writes the tree of `commit` into `target` (no `.git` inside).
    fn export(&self, commit: &str, target: &Path) -> Result<(), GitError> {
        let tmp = target.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|source| GitError::Create {
            path: tmp.clone(),
            source,
        })?;
        let index = tmp.with_extension("index");
        let mut work_tree = std::ffi::OsString::from("--work-tree=");
        work_tree.push(&tmp);
        let result = Self::run(
            &[
                self.git_dir().as_os_str(),
                work_tree.as_os_str(),
                "checkout".as_ref(),
                "--quiet".as_ref(),
                "--force".as_ref(),
                commit.as_ref(),
                "--".as_ref(),
                ".".as_ref(),
            ],
            Some(&index),
        );
        let _ = std::fs::remove_file(&index);
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        publish(&tmp, target).map_err(|source| GitError::Publish {
            what: "checkout",
            path: target.to_owned(),
            source,
        })
    }
}

/// Moves a finished clone or checkout into place. Another cairn may have put the same one
/// there meanwhile (parallel CI jobs): then that one is kept.
fn publish(tmp: &Path, target: &Path) -> std::io::Result<()> {
    match std::fs::rename(tmp, target) {
        Ok(()) => Ok(()),
        Err(_) if target.is_dir() => {
            let _ = std::fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(tmp);
            Err(e)
        }
    }
}

/// `sha256:<hex>` over the files of a plugin folder in sorted path order: for each file its
/// path relative to the folder (with `/`), a NUL byte, its length (8 bytes, little endian) and
/// its bytes. `.git` folders are skipped.
pub fn content_hash(dir: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for rel in files {
        let bytes = std::fs::read(dir.join(&rel))?;
        hasher.update(rel.as_bytes());
        hasher.update([0u8]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(format!("sha256:{hex}"))
}

fn collect_files(base: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if entry.file_name() != ".git" {
                collect_files(base, &path, out)?;
            }
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            let rel = path.strip_prefix(base).unwrap_or(&path);
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

/// Refreshes `cairn.lock` of the project: every visible plugin (or only `only`), git sources
/// fetched again. Returns the new lock, which is also written.
pub fn update(search: &PluginSearch, only: Option<&str>) -> Result<Lock, PluginError> {
    let project = search.project.as_ref().ok_or_else(|| {
        PluginError::new(
            Code::NoProject,
            "no project here: cairn.lock goes beside a cairn.toml or a plugins/ folder",
        )
    })?;
    let mut lock = project.lock.clone().unwrap_or_default();
    match only {
        Some(name) => {
            let located = search.locate(name, true)?.ok_or_else(|| {
                PluginError::new(Code::PluginNotFound, format!("plugin `{name}` not found"))
            })?;
            lock.plugins
                .insert(name.to_owned(), located.lock_entry(Some(&project.root))?);
        }
        None => {
            lock.plugins.clear();
            for located in search.all(true)? {
                lock.plugins.insert(
                    located.name.clone(),
                    located.lock_entry(Some(&project.root))?,
                );
            }
        }
    }
    let file = project.root.join(LOCK_FILE);
    std::fs::write(&file, lock.to_text()).map_err(|e| {
        PluginError::new(
            Code::LockUnwritable,
            format!("cannot write {}: {e}", file.display()),
        )
    })?;
    Ok(lock)
}

/// Checks a located plugin against the project's lock, if there is one.
pub fn verify(search: &PluginSearch, located: &Located) -> Result<(), PluginError> {
    let Some(lock) = search.project.as_ref().and_then(|p| p.lock.as_ref()) else {
        return Ok(());
    };
    let name = &located.name;
    let Some(entry) = lock.plugins.get(name) else {
        return Err(PluginError::new(
            Code::PluginNotLocked,
            format!("plugin `{name}` is not in cairn.lock"),
        )
        .help("run `cairn plugin update` to lock it"));
    };
    let found = content_hash(&located.dir).map_err(|e| {
        PluginError::new(
            Code::PluginUnreadable,
            format!("cannot read plugin `{name}`: {e}"),
        )
    })?;
    if found != entry.hash {
        return Err(PluginError::new(
            Code::PluginChanged,
            format!(
                "plugin `{name}` ({}) does not match cairn.lock: locked {}, found {found}",
                located.display, entry.hash
            ),
        )
        .help("if the change is intended, run `cairn plugin update` to lock the new content"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cairn-project-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_content_hash_covers_paths_and_bytes_in_order() {
        let dir = temp("hash");
        std::fs::write(dir.join("main.rhai"), "fn f(o) { o }").unwrap();
        std::fs::create_dir_all(dir.join("fixtures")).unwrap();
        std::fs::write(dir.join("fixtures/a.rhai"), "1").unwrap();
        let first = content_hash(&dir).unwrap();
        assert!(first.starts_with("sha256:") && first.len() == 71, "{first}");
        assert_eq!(content_hash(&dir).unwrap(), first);
        std::fs::write(dir.join("fixtures/a.rhai"), "2").unwrap();
        let changed = content_hash(&dir).unwrap();
        assert_ne!(changed, first);
        std::fs::rename(dir.join("fixtures/a.rhai"), dir.join("fixtures/b.rhai")).unwrap();
        assert_ne!(content_hash(&dir).unwrap(), changed);
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::write(dir.join(".git/HEAD"), "x").unwrap();
        let with_git = content_hash(&dir).unwrap();
        std::fs::remove_dir_all(dir.join(".git")).unwrap();
        assert_eq!(content_hash(&dir).unwrap(), with_git);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn project_config_refuses_ambiguous_declarations() {
        let dir = temp("config");
        std::fs::write(
            dir.join(CONFIG_FILE),
            "[plugins]\nx = { git = \"file:///r.git\", tag = \"v1\", rev = \"abc\" }\n",
        )
        .unwrap();
        let e = Project::open(&dir).unwrap_err();
        assert!(e.message.contains("both a tag and a rev"), "{e}");
        std::fs::write(
            dir.join(CONFIG_FILE),
            "[plugins]\nx = { git = \"file:///r.git\", path = \"../up\" }\n",
        )
        .unwrap();
        let e = Project::open(&dir).unwrap_err();
        assert!(e.message.contains("inside its repository"), "{e}");
        std::fs::write(dir.join(CONFIG_FILE), "[plugins]\nx = { gti = \"u\" }\n").unwrap();
        let e = Project::open(&dir).unwrap_err();
        assert!(e.message.contains("unknown field `gti`"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn repo_keys_are_readable_and_distinct() {
        let a = repo_key("https://github.com/acme/cairn-plugins");
        let b = repo_key("file:///srv/cairn-plugins.git");
        assert!(a.starts_with("cairn-plugins-"), "{a}");
        assert!(b.starts_with("cairn-plugins-"), "{b}");
        assert_ne!(a, b);
    }
}
