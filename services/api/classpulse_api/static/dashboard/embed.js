// The embedded dashboard's first step (/dashboard/embed#token=...): the platform's viewer token came in the fragment,
// which no browser sends to a server; it leaves the address (and so the history) and is posted, once, in a request
// body. What comes back is the dashboard, or a page that says why the token was refused.
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
history.replaceState(null, "", location.pathname);
const exchange = document.getElementById("token-exchange");
exchange.elements.token.value = token;
exchange.submit();
