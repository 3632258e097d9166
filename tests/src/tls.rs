//! A private certificate authority and a server certificate it signed, made with `openssl`
//! for the TLS tests of every broker (the broker the test starts serves the certificate;
//! clients trust the CA through the URL's CA option).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA (`ca.pem`) and a server certificate (`server.pem`, key `server.key`) for
/// `localhost` and `127.0.0.1`, in a fresh temporary directory removed on drop (or in a
/// directory the caller owns).
#[derive(Debug)]
pub struct PrivateCa {
    /// The directory holding the files.
    pub dir: PathBuf,
    /// Whether the directory is this value's, removed on drop.
    owned: bool,
}

impl PrivateCa {
    /// Makes the CA and the server certificate in a fresh temporary directory (needs
    /// `openssl` on the machine).
    pub fn generate() -> PrivateCa {
        let dir = std::env::temp_dir().join(format!("sio-tls-{:08x}", fastrand::u32(..)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self::make(PrivateCa { dir, owned: true })
    }

    /// Makes them in `dir`, which stays the caller's (a broker's own directory, when the
    /// broker runs as another user who must read the key).
    pub fn generate_in(dir: &Path) -> PrivateCa {
        Self::make(PrivateCa { dir: dir.to_owned(), owned: false })
    }

    fn make(ca: PrivateCa) -> PrivateCa {
        let d = |f: &str| ca.dir.join(f).display().to_string();
        openssl(
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=sio-test-ca"],
            &["-keyout", &d("ca.key"), "-out", &d("ca.pem")],
        );
        openssl(
            &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"],
            &["-keyout", &d("server.key"), "-out", &d("server.csr")],
        );
        std::fs::write(ca.dir.join("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").expect("ext.cnf");
        openssl(
            &["x509", "-req", "-days", "2", "-CAcreateserial"],
            &[
                "-in",
                &d("server.csr"),
                "-CA",
                &d("ca.pem"),
                "-CAkey",
                &d("ca.key"),
                "-out",
                &d("server.pem"),
                "-extfile",
                &d("ext.cnf"),
            ],
        );
        ca
    }

    /// The CA certificate (PEM), for the client side.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server certificate (PEM).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server certificate's private key (PEM).
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// A path as a `&str` for command lines and URLs.
    pub fn arg(path: &Path) -> &str {
        path.to_str().expect("UTF-8 temporary path")
    }
}

impl Drop for PrivateCa {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn openssl(args: &[&str], more: &[&str]) {
    let out = Command::new("openssl").args(args).args(more).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?} {more:?}: {}", String::from_utf8_lossy(&out.stderr));
}
