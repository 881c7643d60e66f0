import { checkStateTable, sourcesOf } from '../../src/lib/state-table';
import { checkoutTransitions } from '../../src/modules/checkout/checkout.states';

describe('state tables', () => {
  it('When a transition is entered, then its sources are the states that list it', () => {
    expect(sourcesOf(checkoutTransitions, 'paid').sort()).toEqual(['closed', 'expired', 'open']);
    expect(sourcesOf(checkoutTransitions, 'expired')).toEqual(['open']);
  });
  it('When a table names an undeclared state, then it fails at load, naming the move', () => {
    expect(() => checkStateTable('demo', { a: ['b'], b: ['c'] } as Record<string, readonly string[]>)).toThrow('demo state table: b -> c unknown');
  });
});
