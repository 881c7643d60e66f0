import type { ChannelOrderStatus } from '../../generated/prisma/enums';
import { checkStateTable, sourcesOf } from '../../lib/state-table';

/** Channel order moves. closed -> paid: the channel's word wins if a payment beat our close. */
export const channelOrderTransitions = checkStateTable<ChannelOrderStatus>('channel order', {
  created: ['paid', 'closed'],
  closed: ['paid'],
  paid: [],
});

export const channelOrderSourcesOf = (to: ChannelOrderStatus) => sourcesOf(channelOrderTransitions, to);
