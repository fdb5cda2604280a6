//! The configuration files users already have, read as they are: Claude Desktop's (with its own
//! settings beside `mcpServers`), Cursor's (servers without `type`, a disabled one), VS Code's
//! `.vscode/mcp.json` (`servers`, `inputs`, `${env:NAME}`, `dev`) and Claude Code's `.mcp.json`.

use gauntlet_client::config::{Config, ConfigError, TransportSpec};

fn read(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs").join(name);
    std::fs::read_to_string(path).expect("a config fixture")
}

fn env(var: &str) -> Option<String> {
    match var {
        "GITHUB_TOKEN" => Some("ghp_secret_1".to_owned()),
        "DOCS_TOKEN" => Some("docs_secret_2".to_owned()),
        "HOME" => Some("/home/me".to_owned()),
        "SEARCH_KEY" => Some("search_secret_3".to_owned()),
        _ => None,
    }
}

fn names(c: &Config) -> Vec<&str> {
    c.servers.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn claude_desktop_s_file_is_read_and_its_own_settings_are_listed_as_ignored() {
    let c = Config::parse(&read("claude-desktop.json"), &env).expect("parses");
    assert_eq!(names(&c), ["filesystem", "github"]);
    assert_eq!(c.ignored, ["globalShortcut"]);
    let TransportSpec::Stdio { command, env: vars, .. } = &c.servers[1].transport else { panic!("stdio") };
    assert_eq!(command, "npx");
    assert_eq!(vars["GITHUB_PERSONAL_ACCESS_TOKEN"].expose(), "ghp_secret_1");
}

#[test]
fn cursor_s_file_infers_http_from_a_url_and_skips_a_disabled_server() {
    let c = Config::parse(&read("cursor.json"), &env).expect("parses");
    assert_eq!(names(&c), ["everything", "remote-docs"]);
    assert!(c.ignored.is_empty());
    let TransportSpec::Http { url, .. } = &c.servers[1].transport else { panic!("http, from the url") };
    assert_eq!(url, "http://localhost:3001/mcp");
}

#[test]
fn vs_code_s_file_takes_servers_and_env_variables_and_ignores_its_inputs() {
    let c = Config::parse(&read("vscode-mcp.json"), &env).expect("parses");
    assert_eq!(names(&c), ["memory", "search"]);
    assert_eq!(c.ignored, ["inputs"]);
    let TransportSpec::Stdio { env: vars, .. } = &c.servers[0].transport else { panic!("stdio") };
    assert_eq!(vars["MEMORY_FILE_PATH"].expose(), "/home/me/memory.json");
    // A prompt VS Code would show cannot be shown here: the message says what to write instead.
    let prompted = read("vscode-mcp.json").replace("${SEARCH_KEY}", "${input:api-key}");
    let Err(ConfigError::Server { server, field, message }) = Config::parse(&prompted, &env) else {
        panic!("a VS Code input is refused")
    };
    assert_eq!((server.as_str(), field.as_str()), ("search", "headers.X-Api-Key"));
    assert!(message.contains("VS Code prompt") && message.contains("`${NAME}`"), "{message}");
}

#[test]
fn claude_code_s_mcp_json_is_read_with_defaults_for_unset_variables() {
    let c = Config::parse(&read("claude-code.mcp.json"), &env).expect("parses");
    assert_eq!(names(&c), ["internal-api", "sequential-thinking"]);
    let TransportSpec::Http { headers, .. } = &c.servers[0].transport else { panic!("http") };
    assert_eq!(headers["Authorization"].expose(), "Bearer dev");
}

#[test]
fn an_sse_server_is_refused_with_what_to_write_instead() {
    let text = r#"{"mcpServers": {"legacy": {"type": "sse", "url": "http://localhost:9000/sse"}}}"#;
    let Err(ConfigError::Server { server, field, message }) = Config::parse(text, &env) else { panic!("refused") };
    assert_eq!((server.as_str(), field.as_str()), ("legacy", "type"));
    assert!(message.contains("legacy HTTP+SSE") && message.contains(r#""type": "http""#), "{message}");
}

#[test]
fn a_file_without_servers_names_the_keys_it_has() {
    let Err(ConfigError::Invalid(message)) = Config::parse(r#"{"mcpServer": {}, "theme": "dark"}"#, &env) else {
        panic!("refused")
    };
    assert_eq!(message, "no `mcpServers` (or VS Code's `servers`) section; the top-level keys are: mcpServer, theme");
    let both = r#"{"mcpServers": {"a": {"command": "x"}}, "servers": {"b": {"command": "y"}}}"#;
    assert!(matches!(Config::parse(both, &env), Err(ConfigError::Invalid(m)) if m.contains("both")));
}
