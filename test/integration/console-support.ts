/** Helpers shared by the console tests (test/integration/console*.test.ts). */
import request from 'supertest';
import type { Harness } from '../support/harness';

/** Signs in like a browser: GET the form (login token cookie + field), POST it, keep the session cookie. */
export async function signIn(h: Harness, email: string, password: string, agent = request.agent(h.app)) {
  const form = await agent.get('/console/login').expect(200);
  const token = /name="_login" value="([^"]+)"/.exec(form.text)![1]!;
  const res = await agent.post('/console/login').type('form').send({ _login: token, email, password });
  return { agent, res };
}

export const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)![1]!;

/** An action's confirm page (GET): its status, text, the form's CSRF token, fresh actionKey and stamp (when there is a form). */
export async function confirmPage(agent: request.Agent, url: string, query: Record<string, string> = {}) {
  const page = await agent.get(url).query(query);
  const key = /name="actionKey" value="([^"]+)"/.exec(page.text)?.[1] ?? null;
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? null;
  // The state the confirmation was made against (an action whose statement a change would falsify).
  const stamp = /name="stamp" value="([^"]+)"/.exec(page.text)?.[1] ?? null;
  return { status: page.status, text: page.text, key, csrf, stamp };
}
