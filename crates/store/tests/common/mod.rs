//! Shared by the read-model tests: a fresh, migrated PostgreSQL database.

use splai_config::StoreSettings;
use splai_store::Store;

/// A new database on the server of SPLAI_TEST_POSTGRES_URL (an admin URL), migrated; None when
/// the variable is unset (a failure instead with SPLAI_TEST_REQUIRE_SERVICES=1).
pub async fn postgres() -> Option<Store> {
    let Ok(admin) = std::env::var("SPLAI_TEST_POSTGRES_URL") else {
        assert!(std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(), "SPLAI_TEST_POSTGRES_URL not set");
        eprintln!("skipped: SPLAI_TEST_POSTGRES_URL not set (run scripts/test)");
        return None;
    };
    let name = format!(
        "splai_t{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            % 1_000_000_000
    );
    let admin_store = Store::connect(&StoreSettings { url: admin.clone(), max_connections: 1, fsync: false })
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(admin_store.pool())
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
    let store =
        Store::connect(&StoreSettings { url: format!("{base}/{name}"), max_connections: 4, fsync: false })
            .await
            .unwrap();
    store.migrate().await.unwrap();
    Some(store)
}
