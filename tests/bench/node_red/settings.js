// Node-RED settings for the peer benchmark (tests/bench/peers.py): headless on loopback,
// no editor, no admin API, no projects, no telemetry or update checks, no palette installs.
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: parseInt(process.env.PORT || "1880", 10),
    httpAdminRoot: false,
    httpNodeRoot: "/",
    disableEditor: true,
    credentialSecret: false,
    editorTheme: { projects: { enabled: false } },
    diagnostics: { enabled: false, ui: false },
    telemetry: { enabled: false },
    runtimeState: { enabled: false, ui: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    functionExternalModules: false,
    logging: { console: { level: "warn", metrics: false, audit: false } },
};
