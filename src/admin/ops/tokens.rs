//! API tokens.

use super::*;

impl Ops<'_> {
    pub async fn create_api_token(&self, name: &str) -> OpResult<String> {
        if name.trim().is_empty() {
            return Err(OpError::Invalid("--name: must not be empty".into()));
        }
        let token = format!("gh_{}", crate::crypto::random_token());
        let id = uuid::Uuid::now_v7().to_string();
        match self
            .base
            .store
            .insert_api_token(
                &id,
                name.trim(),
                &crate::crypto::sha256_hex(token.as_bytes()),
                store::now(),
            )
            .await
        {
            Err(StoreError::Conflict) => {
                return Err(OpError::Conflict(format!(
                    "a token named {name} already exists"
                )));
            }
            other => other?,
        }
        self.audit("token.create", name.trim(), None, json!({ "id": id }))
            .await;
        Ok(token)
    }

    pub async fn list_api_tokens(&self) -> OpResult<Vec<store::ApiTokenRow>> {
        Ok(self.base.store.list_api_tokens().await?)
    }
}
