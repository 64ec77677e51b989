"""Steering a run from outside its worker: commands travel through a Redis list per run.

The API and the websocket consumer push commands; the run's context pops them at its step
boundaries and blocks on the list while paused, so a resume or a step reaches it at once.
"""

import json

import redis
from django.conf import settings

_client = None


def client():
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.CONTROL_REDIS_URL, socket_timeout=10)
    return _client


def _key(run_id):
    return f"distlab:run:{int(run_id)}:control"


def send(run_id, command):
    pipe = client().pipeline()
    pipe.rpush(_key(run_id), json.dumps(command))
    pipe.expire(_key(run_id), 3600)
    pipe.execute()


def discard(run_id):
    client().delete(_key(run_id))


class RedisControl:
    def __init__(self, run_id):
        self.key = _key(run_id)
        self.redis = redis.Redis.from_url(settings.CONTROL_REDIS_URL, socket_timeout=30)

    def poll(self):
        items = self.redis.lpop(self.key, 100) or []
        return [json.loads(item) for item in items]

    def wait(self, timeout):
        item = self.redis.blpop([self.key], timeout=max(timeout, 0.01))
        return json.loads(item[1]) if item else None

    def close(self):
        self.redis.close()
