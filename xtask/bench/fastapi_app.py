"""The seeds' stack, for `cargo xtask bench load`: FastAPI + slowapi + a
security-header middleware, verifying palisade-server's HS256 access tokens
with PyJWT.

It answers the two routes the benchmark measures, the way the seeds did:

- `GET /health/live` -> 200 `{"status": "ok"}` (exempt from the limiter, as
  palisade-server exempts `/health/*` from its per-IP limit);
- `GET /me` with `Authorization: Bearer <access token>` -> the caller's
  account, after PyJWT checks the signature, `exp`, `iss` and `aud`.

The limiter keys on the client address with a limit high enough never to
answer 429 (`BENCH_RATE_LIMIT`, default 1000000/minute), so the benchmark
measures the stack, not refusals. Every response carries the security headers
palisade-server sends on an API response.

Run (the xtask does): `uvicorn fastapi_app:app --workers <cores>` with
`PALISADE_JWT_ACCESS_SECRET` set to the server's access-token secret.
"""

import os

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import SlowAPIMiddleware
from slowapi.util import get_remote_address

ACCESS_SECRET = os.environ["PALISADE_JWT_ACCESS_SECRET"]
ISSUER = "palisade-server"
AUDIENCE = "palisade-api"

limiter = Limiter(
    key_func=get_remote_address,
    default_limits=[os.environ.get("BENCH_RATE_LIMIT", "1000000/minute")],
)

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
app.state.limiter = limiter
app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)
app.add_middleware(SlowAPIMiddleware)

# The headers palisade-server's HeaderPolicy::api() puts on a JSON response
# (palisade-server also sends X-Request-Id and `Vary: Origin`, which the
# seeds did not: left out here, to the peer's advantage).
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": (
        "accelerometer=(), autoplay=(), browsing-topics=(), camera=(), "
        "display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), "
        "gyroscope=(), hid=(), magnetometer=(), microphone=(), midi=(), payment=(), "
        "picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), "
        "serial=(), usb=(), xr-spatial-tracking=()"
    ),
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "origin-agent-cluster": "?1",
    "x-permitted-cross-domain-policies": "none",
    "x-dns-prefetch-control": "off",
    "x-xss-protection": "0",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


@app.middleware("http")
async def security_headers(request: Request, call_next):
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("cache-control", "no-store")
    return response


bearer = HTTPBearer()

# The accounts, by id (the seeds kept theirs in a dict too). The benchmark's
# users registered with palisade-server; each is added on first sight.
USERS: dict[str, dict] = {}


async def current_claims(
    credentials: HTTPAuthorizationCredentials = Depends(bearer),
) -> dict:
    try:
        return jwt.decode(
            credentials.credentials,
            ACCESS_SECRET,
            algorithms=["HS256"],
            issuer=ISSUER,
            audience=AUDIENCE,
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.PyJWTError as error:
        raise HTTPException(
            status_code=401,
            detail="invalid token",
            headers={"WWW-Authenticate": "Bearer"},
        ) from error


@app.get("/health/live")
@limiter.exempt
async def live():
    return {"status": "ok"}


@app.get("/me")
async def me(request: Request, claims: dict = Depends(current_claims)):
    subject = claims["sub"]
    user = USERS.get(subject)
    if user is None:
        user = USERS.setdefault(
            subject,
            {
                "id": subject,
                "username": subject,
                "role": claims.get("role", "user"),
                "scopes": ["reports:read"],
                "display_name": None,
            },
        )
    return user
