//! Starts moto server 5.1.22 on a free loopback port, in a temp dir of its own, with request
//! recording on (so tests can assert how many requests moto saw). Shared with cairn-tests
//! (`tests/it/main.rs` includes it as `s3_harness`).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cairn_s3::{S3Client, S3Settings};

pub struct Moto {
    child: Child,
    pub endpoint: String,
    dir: PathBuf,
}

fn moto_server() -> PathBuf {
    // The workspace root (this harness is also compiled into the cairn-tests crate).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .unwrap_or(Path::new("."));
    let path = root.join(".test-tools/moto/bin/moto_server");
    assert!(
        path.exists(),
        "moto_server not found at {}: run scripts/install-test-servers",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Moto {
    pub fn start() -> Moto {
        static N: AtomicU32 = AtomicU32::new(0);
        let server = moto_server();
        let dir = std::env::temp_dir().join(format!(
            "cairn-s3-moto-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for _attempt in 0..3 {
            let port = free_port();
            let log = std::fs::File::create(dir.join("moto.log")).expect("log file");
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .current_dir(&dir)
                .env("MOTO_ENABLE_RECORDING", "true")
                .env("MOTO_RECORDER_FILEPATH", dir.join("recording"))
                .env("TMPDIR", &dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("start moto_server");
            let mut moto = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
                dir: dir.clone(),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = moto.child.try_wait() {
                    break; // exited: the port was taken, try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return moto;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = moto.child.kill();
            let _ = moto.child.wait();
        }
        panic!(
            "moto_server did not start; see {}",
            dir.join("moto.log").display()
        );
    }

    pub fn settings(&self) -> S3Settings {
        S3Settings::local(&self.endpoint)
    }

    pub async fn client(&self) -> S3Client {
        S3Client::new(&self.settings()).await.expect("client")
    }

    /// Requests moto has seen so far (its recorder; its own API excluded).
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(self.dir.join("recording"))
            .map(|t| t.lines().filter(|l| !l.contains("/moto-api/")).count())
            .unwrap_or(0)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
