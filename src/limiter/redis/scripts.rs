//! What runs inside Redis: the Lua scripts of a round (a claim, the heartbeat, a
//! cooldown announced, all cooldowns read back), the keys and channel they use,
//! and loading the scripts so that rounds can call them by hash.

use super::SLOW;
use fred::interfaces::LuaInterface;
use fred::prelude::*;

/// The channel cooldowns are announced on.
pub const CHANNEL: &str = "sluice:cooldowns";
/// Keys shared by all deployments (one hash slot, so scripts work on a cluster).
pub const REPLICAS_KEY: &str = "sluice:{global}:replicas";
pub const COOLDOWNS_KEY: &str = "sluice:{global}:cooldowns";
pub const EPOCH_KEY: &str = "sluice:{global}:epoch";

const CLAIM: &str = r#"
local function claim(key, want, limit, extra)
  if limit < 0 then return {0, 0} end
  local used = tonumber(redis.call('GET', key) or '0')
  local granted = math.min(want, limit - used - extra)
  if granted < 0 then granted = 0 end
  if granted + extra ~= 0 then
    used = redis.call('INCRBY', key, granted + extra)
    redis.call('PEXPIRE', key, ARGV[7])
  end
  return {granted, used}
end
local r = claim(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
local t = claim(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
return {r[1], r[2], t[1], t[2]}
"#;

/// Also returns the epoch: a random marker set once per Redis dataset (by whichever
/// replica gets there first), so every replica notices when Redis lost its counters
/// (a restart without persistence).
const HEARTBEAT_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
redis.call('SET', KEYS[2], ARGV[3], 'NX')
return {now, redis.call('ZCARD', KEYS[1]), redis.call('GET', KEYS[2])}
"#;

const COOLDOWN: &str = r#"
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], 86400000)
redis.call('PUBLISH', ARGV[3], ARGV[1] .. ' ' .. ARGV[2])
return 1
"#;

const COOLDOWNS: &str = "return redis.call('HGETALL', KEYS[1])";

/// The scripts above, in the order rounds refer to them by hash.
pub const ALL: [&str; 4] = [CLAIM, HEARTBEAT_LUA, COOLDOWN, COOLDOWNS];

/// Loads every script (on each node of a cluster); false when Redis did not take them.
pub async fn load_scripts(client: &Client, clustered: bool) -> bool {
    for script in ALL {
        let load = async {
            if clustered {
                client.script_load_cluster::<(), _>(script).await
            } else {
                client.script_load::<String, _>(script).await.map(|_| ())
            }
        };
        match tokio::time::timeout(SLOW * 4, load).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "redis: cannot load scripts");
                return false;
            }
            Err(_) => return false,
        }
    }
    true
}
