//! The backup CronJob's and the restore template's scripts, taken from the rendered manifests
//! and run for real with bash: against a PostgreSQL server (initdb + pg_ctl on a free loopback
//! port, as an unprivileged user) and the moto S3 server, with the environment variables the
//! CronJob sets. Dump, upload under a timestamped key, restore into a second database, compare.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cairn_tests::{root, temp_dir};

use crate::s3_harness::Moto;

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

pub(crate) fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The newest PostgreSQL server's binaries, `/usr/lib/postgresql/<version>/bin`.
fn postgres_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server (initdb, pg_ctl) under /usr/lib/postgresql/*/bin: run scripts/install-test-servers"
        )
    })
}

/// A tool of `.test-tools/`, which `scripts/install-test-servers` installs.
fn test_tool(path: &str) -> PathBuf {
    let p = root().join(".test-tools").join(path);
    assert!(
        p.exists(),
        "{} not found: run scripts/install-test-servers",
        p.display()
    );
    p
}

/// Commands run as an unprivileged user when the tests run as root (PostgreSQL refuses root).
fn unprivileged(program: &Path) -> Command {
    let uid = run(Command::new("id").arg("-u")).stdout;
    if String::from_utf8_lossy(&uid).trim() == "0" {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL server in a temp dir, on a free loopback port, with trust for its superuser
/// on its Unix socket and passwords over TCP.
pub(crate) struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    pub(crate) port: u16,
}

impl Postgres {
    pub(crate) fn start() -> Postgres {
        let bin = postgres_bin();
        let dir = temp_dir("postgres");
        let data = dir.join("data");
        if run(Command::new("id").arg("-u")).stdout.starts_with(b"0\n") {
            run(Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(&dir));
        }
        run(unprivileged(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .current_dir(&dir));
        for _attempt in 0..3 {
            let port = free_port();
            let conf = format!(
                "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\n",
                dir.display()
            );
            let path = data.join("postgresql.auto.conf");
            std::fs::write(&path, conf).expect("postgresql.auto.conf");
            let started = unprivileged(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "-t", "30", "start"])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .status()
                .expect("run pg_ctl");
            if started.success() {
                return Postgres { bin, dir, port };
            }
        }
        panic!(
            "PostgreSQL did not start; see {}",
            dir.join("server.log").display()
        );
    }

    /// `psql` as the superuser on the Unix socket.
    pub(crate) fn psql(&self, database: &str, sql: &str) -> String {
        let out = run(Command::new("psql")
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-tA", "-U", "postgres"])
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql]));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = unprivileged(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One container of a rendered pod template: its `sh -c` script and its environment, with
/// Secret and ConfigMap references resolved from the rendered objects.
struct Step {
    script: String,
    env: BTreeMap<String, String>,
}

fn step(
    state: &cairn_model::DesiredState,
    cron_job: &str,
    list: &str,
    container: &str,
    password: &str,
) -> Step {
    let revealed = |kind: &str, name: &str| -> serde_json::Value {
        let r = state
            .resources
            .iter()
            .find(|r| r.id.kind == kind && r.id.name == name)
            .unwrap_or_else(|| panic!("{kind} {name} is rendered"));
        r.body
            .reveal(&|_| Some(password.to_owned()))
            .expect("revealed")
    };
    let job = revealed("CronJob", cron_job);
    let c = job
        .pointer(&format!("/spec/jobTemplate/spec/template/spec/{list}"))
        .and_then(serde_json::Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["name"] == container))
        .unwrap_or_else(|| panic!("container {container} in {list} of {cron_job}"))
        .clone();
    assert_eq!(c["command"][0], "sh");
    assert_eq!(c["command"][1], "-c");
    let script = c["command"][2].as_str().expect("a script").to_owned();
    let mut env = BTreeMap::new();
    for e in c["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().expect("name").to_owned();
        let value = if let Some(v) = e.get("value") {
            v.as_str().expect("a string").to_owned()
        } else {
            let (kind, r) = if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
                ("Secret", r)
            } else {
                let r = e
                    .pointer("/valueFrom/configMapKeyRef")
                    .expect("a value or a reference");
                ("ConfigMap", r)
            };
            let source = revealed(kind, r["name"].as_str().expect("name"));
            let key = r["key"].as_str().expect("key");
            source
                .pointer(&format!("/stringData/{key}"))
                .or_else(|| source.pointer(&format!("/data/{key}")))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_else(|| panic!("{kind} key {key}"))
                .to_owned()
        };
        env.insert(name, value);
    }
    Step { script, env }
}

/// Runs a step's script with bash, its paths moved from the pod's volume to `volume`.
fn run_step(step: &Step, mount: &str, volume: &Path, extra: &[(&str, &str)]) -> String {
    let script = step.script.replace(mount, &volume.display().to_string());
    let path = format!(
        "{}:{}",
        test_tool("awscli/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env_clear()
        .env("PATH", path)
        .env("HOME", volume)
        .envs(&step.env)
        .envs(extra.iter().copied()));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_backup_cronjob_scripts_dump_upload_and_restore_for_real() {
    let pg = Postgres::start();
    let moto = Moto::start();
    let script = format!(
        r#"
import "postgres" as postgres;
let env = environment("bk", #{{ backups: s3(#{{ bucket: "bk-backups", region: "us-east-1",
    endpoint: "{}", path_style: true,
    access_key_id: sensitive("AKIDTEST"), secret_access_key: sensitive("s3cr3t") }}) }});
env.namespace("bk", #{{}});
let db = postgres::instance(env, "pg", #{{ storage: "1Gi", database: "app", user: "app" }});
env.backup(db, #{{ schedule: "0 2 * * *", keep_days: 7, prefix: "postgres/" }});
"#,
        moto.endpoint
    );
    let eval = cairn_stdlib::evaluate(
        "backup.rhai",
        &script,
        &[root().join("plugins")],
        &cairn_stdlib::EvalOptions::default(),
    );
    assert!(!eval.has_errors(), "{:?}", eval.diagnostics);
    let password = "p4ss-from-the-secret";
    let dump = step(&eval.state, "pg-backup", "initContainers", "dump", password);
    let upload = step(&eval.state, "pg-backup", "containers", "upload", password);
    let download = step(
        &eval.state,
        "pg-restore",
        "initContainers",
        "download",
        password,
    );
    let restore = step(&eval.state, "pg-restore", "containers", "restore", password);
    for var in ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"] {
        assert!(dump.env.contains_key(var), "the dump step sets {var}");
    }
    for var in [
        "S3_BUCKET",
        "S3_PREFIX",
        "S3_ENDPOINT",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(upload.env.contains_key(var), "the upload step sets {var}");
    }
    assert_eq!(dump.env["PGUSER"], "app");
    assert_eq!(dump.env["PGPASSWORD"], password);
    assert_eq!(download.env["BACKUP_KEY"], "latest");

    // The database the CronJob's variables name, with the password of its Secret.
    pg.psql(
        "postgres",
        &format!("CREATE ROLE app LOGIN PASSWORD '{password}'"),
    );
    pg.psql("postgres", "CREATE DATABASE app OWNER app");
    pg.psql("postgres", "CREATE DATABASE restored OWNER app");
    let port = pg.port.to_string();
    // The service name `pg` resolves only inside the cluster: point host and port at the test
    // server; everything else is as rendered.
    let here: [(&str, &str); 2] = [("PGHOST", "127.0.0.1"), ("PGPORT", &port)];
    let mut connect = here.to_vec();
    connect.push(("PGPASSWORD", password));
    run(Command::new("psql")
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(
            "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, qty int); \
             INSERT INTO orders (item, qty) SELECT 'item-' || g, g % 7 FROM generate_series(1, 1234) g;",
        )
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&dump.env)
        .envs(connect.iter().copied()));

    // The bucket exists before the first backup (cairn's S3 provider creates it).
    let aws = test_tool("awscli/bin/aws");
    let aws_env = [
        (
            "AWS_ACCESS_KEY_ID",
            upload.env["AWS_ACCESS_KEY_ID"].as_str(),
        ),
        (
            "AWS_SECRET_ACCESS_KEY",
            upload.env["AWS_SECRET_ACCESS_KEY"].as_str(),
        ),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ];
    run(Command::new(&aws)
        .args([
            "--endpoint-url",
            &moto.endpoint,
            "s3",
            "mb",
            "s3://bk-backups",
        ])
        .envs(aws_env));

    // The backup: dump, then upload, sharing the pod's emptyDir.
    let work = temp_dir("backup-volume");
    run_step(&dump, "/backup", &work, &here);
    let key = std::fs::read_to_string(work.join("key")).expect("the dump step writes the key");
    run_step(&upload, "/backup", &work, &[]);
    assert!(key.starts_with("postgres/app-"), "{key}");
    let stamp = key
        .strip_prefix("postgres/app-")
        .and_then(|k| k.strip_suffix(".sql.gz"))
        .expect("<prefix><database>-<time>.sql.gz");
    assert_eq!(stamp.len(), 16, "{stamp}");
    assert!(
        stamp[..8].bytes().all(|b| b.is_ascii_digit())
            && &stamp[8..9] == "T"
            && stamp[9..15].bytes().all(|b| b.is_ascii_digit())
            && stamp.ends_with('Z'),
        "a UTC timestamp: {stamp}"
    );

    // The object is in the bucket under that key, as large as the dump.
    let listed = run(Command::new(&aws)
        .args([
            "--endpoint-url",
            &moto.endpoint,
            "s3api",
            "list-objects-v2",
            "--bucket",
            "bk-backups",
            "--prefix",
            "postgres/",
            "--output",
            "json",
        ])
        .envs(aws_env));
    let listed: serde_json::Value =
        serde_json::from_slice(&listed.stdout).expect("list-objects-v2 JSON");
    let objects = listed["Contents"].as_array().expect("objects");
    assert_eq!(objects.len(), 1, "{listed}");
    assert_eq!(objects[0]["Key"], key.as_str());
    let size = std::fs::metadata(work.join("dump.sql.gz"))
        .expect("dump")
        .len();
    assert!(size > 1000, "a dump of 1234 rows is {size} bytes");
    assert_eq!(objects[0]["Size"].as_u64(), Some(size));

    // The restore template: download `latest`, load it into another database.
    let restore_dir = temp_dir("restore-volume");
    let said = run_step(&download, "/restore", &restore_dir, &[]);
    assert!(
        said.contains(&format!("restoring s3://bk-backups/{key}")),
        "{said}"
    );
    let mut into = here.to_vec();
    into.push(("TARGET_DATABASE", "restored"));
    run_step(&restore, "/restore", &restore_dir, &into);

    let count = |db: &str| pg.psql(db, "SELECT count(*), sum(qty) FROM orders");
    assert_eq!(count("app"), "1234|3699");
    assert_eq!(count("restored"), count("app"));
    let _ = std::fs::remove_dir_all(&work);
    let _ = std::fs::remove_dir_all(&restore_dir);
}
